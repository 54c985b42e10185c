// What POST /images/create's progress stream says, line by line: pure, no stream,
// no timer. The lines come apart in constant memory (LineSplitter: only the
// unfinished line is kept, and a line too long to be Docker's progress is
// dropped); each line is read into the pull's state (PullLines: one entry per
// layer). The first errorDetail line ends the pull; an end without a final status
// is a pull that did not finish. Progress is bytes done / total across layers,
// and layers downloaded and unpacked (the containerd image store hides byte
// counts). Activity — what keeps the inactivity timeout from firing — is
// progress, not bytes: the containerd store repeats the same `Downloading` line
// ten times a second for a stalled layer.
import type { Progress } from "./types.ts";

/** A line longer than this is not Docker progress; it is dropped, not buffered. */
export const MAX_LINE_BYTES = 1 << 20;

/** Splits chunks into complete lines, keeping only the unfinished one. */
export class LineSplitter {
  private rest = "";
  /** The unfinished line grew past MAX_LINE_BYTES: the rest of it, up to its newline, is dropped too. */
  private skipping = false;

  /** The complete lines `chunk` ends, in order. */
  push(chunk: string): string[] {
    const lines: string[] = [];
    let text = this.rest + chunk;
    let nl: number;
    while ((nl = text.indexOf("\n")) >= 0) {
      const line = text.slice(0, nl);
      text = text.slice(nl + 1);
      if (this.skipping) this.skipping = false;
      else lines.push(line);
    }
    if (text.length > MAX_LINE_BYTES) {
      this.skipping = true;
      text = "";
    }
    this.rest = text;
    return lines;
  }

  /** The stream ended: its last line, where it had no newline and was not dropped. */
  end(): string | undefined {
    return this.skipping ? undefined : this.rest;
  }
}

interface Line {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number; hidecounts?: boolean; units?: string };
  error?: string;
  errorDetail?: { message?: string };
}

interface Layer {
  current: number;
  total: number;
  downloaded: boolean;
  done: boolean;
  /** The last line seen for it (status and count): the same line again is no progress. */
  seen: string;
  status: string;
}

/**
 * What one line means to the pull: `failed`, Docker's error (the pull is over);
 * `status`, a line of the whole pull (activity, no layer); `layer`, a layer moved
 * (activity and progress; `queued` where that changed whether every layer still to
 * come waits for a download slot); `none`, nothing (blank, not JSON, a repeat).
 */
export type LineOutcome =
  | { kind: "none" }
  | { kind: "failed"; message: string }
  | { kind: "status" }
  | { kind: "layer"; progress: Progress; queued?: boolean };

/** How the pull's stream ended: with the digest the engine says it pulled, where it said one, or not finished. */
export type EndOutcome = { kind: "finished"; digest?: string } | { kind: "unfinished"; message: string };

const DIGEST_LINE = /^Digest: (sha256:[0-9a-f]{64})$/;
const DOWNLOADED = /^(Download complete|Verifying Checksum|Extracting|Pull complete|Already exists)$/;

export class PullLines {
  private lastStatus = "";
  /** What the engine says it pulled ("Digest: sha256:…"): for a tag, the manifest (or index) digest. */
  private digest: string | undefined;
  private readonly layers = new Map<string, Layer>();
  private queued = false;

  read(text: string): LineOutcome {
    const line = parse(text);
    if (!line) return { kind: "none" };
    if (line.errorDetail || line.error) return { kind: "failed", message: (line.errorDetail?.message ?? line.error ?? "unknown error").trim() };
    if (line.status) this.lastStatus = line.status;
    this.digest = DIGEST_LINE.exec(line.status ?? "")?.[1] ?? this.digest;
    if (!line.id || !line.status || line.status.startsWith("Pulling from") || line.id.length < 12) {
      return line.status ? { kind: "status" } : { kind: "none" };
    }
    if (!this.moved(line.id, line.status, line.progressDetail)) return { kind: "none" };
    const nowQueued = this.allQueued();
    const changed = nowQueued !== this.queued;
    this.queued = nowQueued;
    return { kind: "layer", progress: this.progress(), ...(changed ? { queued: nowQueued } : {}) };
  }

  end(): EndOutcome {
    if (/^(Status: |Digest: )/.test(this.lastStatus) || /Downloaded newer image|Image is up to date/.test(this.lastStatus)) {
      return { kind: "finished", ...(this.digest ? { digest: this.digest } : {}) };
    }
    return { kind: "unfinished", message: `pull stream ended before the pull finished (last status: ${this.lastStatus || "none"})` };
  }

  /** Records a layer's line; false where it repeats the layer's last one. */
  private moved(id: string, status: string, detail: Line["progressDetail"]): boolean {
    const l = this.layers.get(id) ?? { current: 0, total: 0, downloaded: false, done: false, seen: "", status: "" };
    l.status = status;
    const seen = `${status} ${detail?.current ?? ""}`;
    if (seen === l.seen) return false;
    l.seen = seen;
    if (status === "Downloading" && detail?.total) {
      l.current = detail.current ?? l.current;
      l.total = detail.total;
    } else if (DOWNLOADED.test(status)) {
      l.current = l.total;
      l.downloaded = true;
      if (status === "Pull complete" || status === "Already exists") l.done = true;
    }
    this.layers.set(id, l);
    return true;
  }

  /** Every layer still to come is `Waiting`: queued behind download slots other pulls hold. */
  private allQueued(): boolean {
    const all = [...this.layers.values()];
    return all.every((x) => x.done || x.status === "Waiting") && all.some((x) => x.status === "Waiting");
  }

  private progress(): Progress {
    const p: Progress = { current: 0, total: 0, layers: this.layers.size, layersSized: 0, layersDownloaded: 0, layersDone: 0 };
    for (const l of this.layers.values()) {
      p.current += l.current;
      p.total += l.total;
      if (l.total > 0 || l.downloaded) p.layersSized += 1;
      if (l.downloaded) p.layersDownloaded += 1;
      if (l.done) p.layersDone += 1;
    }
    return p;
  }
}

function parse(text: string): Line | undefined {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as Line;
  } catch {
    return undefined;
  }
}
