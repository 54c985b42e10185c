// Reads POST /images/create's progress stream incrementally, in constant memory:
// only the unfinished line and one entry per layer are kept. The first
// errorDetail line ends the pull; a stream error or an end without a final
// status rejects. Progress is reported as bytes done / total across layers, and
// layers downloaded and unpacked (the containerd image store hides byte counts).
// Activity — what keeps the inactivity timeout from firing — is progress, not
// bytes: the containerd store repeats the same `Downloading` line ten times a
// second for a stalled layer.
import type { Progress } from "./types.ts";

export class PullStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PullStreamError";
  }
}

interface Line {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number; hidecounts?: boolean; units?: string };
  error?: string;
  errorDetail?: { message?: string };
}

/** A line longer than this is not Docker progress; it is dropped, not buffered. */
const MAX_LINE_BYTES = 1 << 20;

export function consumePullStream(
  stream: NodeJS.ReadableStream,
  hooks: {
    onActivity?: () => void;
    onProgress?: (p: Progress) => void;
    /**
     * Whether every layer still to come is `Waiting`: queued behind the engine's own
     * download slots (max-concurrent-downloads, shared by every pull), which other
     * pulls hold. No line comes meanwhile, and that is not a stall.
     */
    onQueued?: (queued: boolean) => void;
  } = {},
): Promise<{ lastStatus: string; digest?: string }> {
  return new Promise((resolve, reject) => {
    let rest = "";
    let skipping = false;
    let lastStatus = "";
    /** What the engine says it pulled ("Digest: sha256:…"): for a tag, the manifest (or index) digest. */
    let digest: string | undefined;
    let settled = false;
    const layers = new Map<string, { current: number; total: number; downloaded: boolean; done: boolean; seen: string; status: string }>();
    let queued = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      stream.removeListener("data", onData);
      if (err) {
        (stream as unknown as { destroy?: () => void }).destroy?.();
        reject(err);
      } else resolve({ lastStatus, ...(digest ? { digest } : {}) });
    };
    const progress = (): Progress => {
      let current = 0;
      let total = 0;
      let layersSized = 0;
      let layersDownloaded = 0;
      let layersDone = 0;
      for (const l of layers.values()) {
        current += l.current;
        total += l.total;
        if (l.total > 0 || l.downloaded) layersSized += 1;
        if (l.downloaded) layersDownloaded += 1;
        if (l.done) layersDone += 1;
      }
      return { current, total, layers: layers.size, layersSized, layersDownloaded, layersDone };
    };
    const handle = (text: string) => {
      if (!text.trim()) return;
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        return;
      }
      if (line.errorDetail || line.error) {
        finish(new PullStreamError((line.errorDetail?.message ?? line.error ?? "unknown error").trim()));
        return;
      }
      if (line.status) lastStatus = line.status;
      digest = /^Digest: (sha256:[0-9a-f]{64})$/.exec(line.status ?? "")?.[1] ?? digest;
      if (!line.id || !line.status || line.status.startsWith("Pulling from") || line.id.length < 12) {
        if (line.status) hooks.onActivity?.();
        return;
      }
      const l = layers.get(line.id) ?? { current: 0, total: 0, downloaded: false, done: false, seen: "", status: "" };
      l.status = line.status;
      const seen = `${line.status} ${line.progressDetail?.current ?? ""}`;
      if (seen === l.seen) return;
      l.seen = seen;
      if (line.status === "Downloading" && line.progressDetail?.total) {
        l.current = line.progressDetail.current ?? l.current;
        l.total = line.progressDetail.total;
      } else if (/^(Download complete|Verifying Checksum|Extracting|Pull complete|Already exists)$/.test(line.status)) {
        l.current = l.total;
        l.downloaded = true;
        if (line.status === "Pull complete" || line.status === "Already exists") l.done = true;
      }
      layers.set(line.id, l);
      const nowQueued = [...layers.values()].every((x) => x.done || x.status === "Waiting") && [...layers.values()].some((x) => x.status === "Waiting");
      if (nowQueued !== queued) hooks.onQueued?.((queued = nowQueued));
      hooks.onActivity?.();
      hooks.onProgress?.(progress());
    };
    const onData = (chunk: Buffer | string) => {
      let text = rest + chunk.toString();
      let nl: number;
      while (!settled && (nl = text.indexOf("\n")) >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        if (skipping) skipping = false;
        else handle(line);
      }
      if (text.length > MAX_LINE_BYTES) {
        skipping = true;
        text = "";
      }
      rest = text;
    };
    stream.on("data", onData);
    stream.once("error", (err: Error) => finish(new PullStreamError(`pull stream failed: ${err.message}`)));
    stream.once("end", () => {
      if (!skipping) handle(rest);
      if (settled) return;
      if (!/^(Status: |Digest: )/.test(lastStatus) && !/Downloaded newer image|Image is up to date/.test(lastStatus)) {
        finish(new PullStreamError(`pull stream ended before the pull finished (last status: ${lastStatus || "none"})`));
      } else finish();
    });
    stream.once("close", () => {
      if (!settled) finish(new PullStreamError("pull stream closed before the pull finished"));
    });
  });
}
