// What GET /v1/status answers (docs/reference.md §8): the daemon's state, with
// the last reconcile and the last image cleanup as they ended.
import type { BakeResult } from "../bake/types.ts";
import type { ErrorBody } from "../errors/agent-error.ts";
import type { BakeRecord } from "./bakes.ts";
import type { CleanupOutcome } from "./cleanup.ts";

export type ReconcileStatus =
  | {
      at: string;
      trigger: string;
      checked: number;
      missing: string[];
      retagged: string[];
      /** The re-pull's status, or what was done without one. */
      status: BakeResult["status"] | "retagged" | "nothing to do";
    }
  | { at: string; trigger: string; status: "failed"; error: ErrorBody };

export type CleanupStatus =
  | (Pick<CleanupOutcome, "at" | "removed" | "untagged" | "bytes" | "failures"> & { kept: number })
  | { at: string; error: ErrorBody };

export interface DaemonStatus {
  version: string;
  boxId: string | null;
  uptimeSeconds: number;
  runningBake: string | null;
  lastBake: BakeRecord | null;
  lastReconcile: ReconcileStatus | null;
  lastCleanup: CleanupStatus | null;
  outboxEvents: number | null;
}
