// Reads POST /images/create's progress stream as it comes, and tells the pull
// what it says (pull-lines.ts reads the lines): the first errorDetail line ends
// the pull; a stream error, a close, or an end without a final status rejects.
import { LineSplitter, PullLines, type LineOutcome } from "./pull-lines.ts";
import type { Progress } from "./types.ts";

export class PullStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PullStreamError";
  }
}

export interface PullStreamHooks {
  onActivity?: () => void;
  onProgress?: (p: Progress) => void;
  /**
   * Whether every layer still to come is `Waiting`: queued behind the engine's own
   * download slots (max-concurrent-downloads, shared by every pull), which other
   * pulls hold. No line comes meanwhile, and that is not a stall.
   */
  onQueued?: (queued: boolean) => void;
}

/** Tells the hooks what a line meant; returns Docker's error where the line ended the pull. */
function tell(outcome: LineOutcome, hooks: PullStreamHooks): PullStreamError | undefined {
  if (outcome.kind === "failed") return new PullStreamError(outcome.message);
  if (outcome.kind === "status") hooks.onActivity?.();
  if (outcome.kind === "layer") {
    if (outcome.queued !== undefined) hooks.onQueued?.(outcome.queued);
    hooks.onActivity?.();
    hooks.onProgress?.(outcome.progress);
  }
  return undefined;
}

/** Resolves with the digest the engine says it pulled, where it says one. */
export function consumePullStream(stream: NodeJS.ReadableStream, hooks: PullStreamHooks = {}): Promise<{ digest?: string }> {
  return new Promise((resolve, reject) => {
    const splitter = new LineSplitter();
    const pull = new PullLines();
    let settled = false;
    const fail = (err: PullStreamError) => {
      if (settled) return;
      settled = true;
      stream.removeListener("data", onData);
      (stream as unknown as { destroy?: () => void }).destroy?.();
      reject(err);
    };
    const read = (line: string) => {
      const failed = tell(pull.read(line), hooks);
      if (failed) fail(failed);
    };
    const onData = (chunk: Buffer | string) => {
      for (const line of splitter.push(chunk.toString())) {
        if (settled) return;
        read(line);
      }
    };
    stream.on("data", onData);
    stream.once("error", (err: Error) => fail(new PullStreamError(`pull stream failed: ${err.message}`)));
    stream.once("end", () => {
      const last = splitter.end();
      if (last !== undefined) read(last);
      if (settled) return;
      const end = pull.end();
      if (end.kind === "unfinished") return fail(new PullStreamError(end.message));
      settled = true;
      stream.removeListener("data", onData);
      resolve(end.digest ? { digest: end.digest } : {});
    });
    stream.once("close", () => fail(new PullStreamError("pull stream closed before the pull finished")));
  });
}
