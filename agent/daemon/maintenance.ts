// The daemon's upkeep between bakes: reconcile (pull again what the manifest
// names and Docker lost, restore moved tags) and image cleanup, each taking the
// runner's turn, each remembering how it last ended for GET /v1/status.
import type { BakeResult } from "../bake/types.ts";
import { asAgentError } from "../errors/agent-error.ts";
import type { Runtime } from "../runtime.ts";
import type { BakeSpec } from "../spec/schema.ts";
import type { BakeRunner } from "./bakes.ts";
import { cleanupImages, type CleanupOutcome } from "./cleanup.ts";
import type { Metrics } from "./metrics.ts";
import { reconcile } from "./reconcile.ts";
import type { CleanupStatus, ReconcileStatus } from "./status.ts";

type Parts = Pick<Runtime, "config" | "docker" | "logger" | "scrubber" | "clock" | "pulled">;

export interface Reconciler {
  /** Reconciles in the runner's turn; `why` names the trigger (start, SIGHUP). */
  run(why: string): Promise<void>;
  last(): ReconcileStatus | undefined;
}

export function createReconciler(
  rt: Parts,
  deps: { runner: Pick<BakeRunner, "exclusive">; run: (spec: BakeSpec, signal: AbortSignal) => Promise<BakeResult>; status: (text: string) => void },
): Reconciler {
  const { config, logger, scrubber, clock } = rt;
  let last: ReconcileStatus | undefined;
  const once = async (why: string, signal: AbortSignal): Promise<ReconcileStatus> => {
    try {
      const r = await reconcile({ stateDir: config.stateDir, docker: rt.docker, run: deps.run }, signal);
      const done: ReconcileStatus = {
        at: new Date(clock.now()).toISOString(),
        trigger: why,
        checked: r.checked,
        missing: r.missing,
        retagged: r.retagged,
        status: r.result?.status ?? (r.retagged.length ? "retagged" : "nothing to do"),
      };
      logger.info(done, `reconcile (${why}): ${r.checked} image(s) checked, ${r.missing.length} pulled again, ${r.retagged.length} retagged`);
      return done;
    } catch (err) {
      const e = asAgentError(err);
      logger.warn({ code: e.code, err: scrubber.scrub(e.message) }, "reconcile failed");
      return { at: new Date(clock.now()).toISOString(), trigger: why, status: "failed", error: e.toBody() };
    }
  };
  return {
    run: (why) =>
      deps.runner.exclusive(async (signal) => {
        deps.status(`reconciling (${why})`);
        last = await once(why, signal);
        deps.status(`serving on ${config.listen}; reconciled (${last.status})`);
      }),
    last: () => last,
  };
}

export interface ImageCleaner {
  /** One image cleanup; the caller holds the turn (the timer's exclusive, or the bake that needs the room). */
  once(signal: AbortSignal): Promise<void>;
  last(): CleanupStatus | undefined;
}

/** What a cleanup works from, and where it says what it did. */
function cleanupInputs(rt: Parts): Parameters<typeof cleanupImages>[0] {
  const { config, logger, clock } = rt;
  return {
    docker: rt.docker,
    stateDir: config.stateDir,
    pulled: rt.pulled,
    keepBakes: config.imageCleanupKeepBakes,
    minAgeSeconds: config.imageCleanupMinAgeSeconds,
    now: () => clock.now(),
    onRemoved: (r) => logger.info({ imageId: r.imageId, refs: r.refs, bytes: r.bytes }, `image cleanup: removed ${r.refs.join(", ")} (${r.bytes} bytes)`),
    onUntagged: (r) => logger.info({ imageId: r.imageId, refs: r.refs }, `image cleanup: untagged ${r.refs.join(", ")}; the image stays under references that are not the agent's`),
    onKept: (k) => logger.info({ imageId: k.imageId, refs: k.refs }, `image cleanup: kept ${k.refs.join(", ") || k.imageId}: ${k.reason}`),
  };
}

function countOutcome(metrics: Metrics, out: CleanupOutcome): void {
  metrics.cleanupRuns.inc({ result: out.failures.length ? "failed" : "ok" });
  metrics.cleanupImages.inc(out.removed.length);
  metrics.cleanupBytes.inc(out.bytes);
  metrics.cleanupFailures.inc(out.failures.length);
}

export function createImageCleaner(rt: Parts, metrics: Metrics): ImageCleaner {
  const { logger, scrubber, clock } = rt;
  let last: CleanupStatus | undefined;
  const once = async (signal: AbortSignal) => {
    try {
      const out = await cleanupImages(cleanupInputs(rt), signal);
      countOutcome(metrics, out);
      for (const f of out.failures) logger.warn({ imageId: f.imageId }, `image cleanup: could not remove ${f.imageId}: ${scrubber.scrub(f.error)}`);
      last = { at: out.at, removed: out.removed, untagged: out.untagged, bytes: out.bytes, kept: out.kept.length, failures: out.failures };
    } catch (err) {
      metrics.cleanupRuns.inc({ result: "failed" });
      last = { at: new Date(clock.now()).toISOString(), error: asAgentError(err).toBody() };
      logger.warn({ err: scrubber.scrub((err as Error).message) }, "image cleanup failed");
    }
  };
  return { once, last: () => last };
}
