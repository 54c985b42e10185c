// How the daemon runs a bake: the same engine as `bake` (bake/run.ts) with the
// daemon's credential cache, metrics, progress reports and room-making cleanup;
// and where its events go: the journal, then the same Reporter the CLI uses.
import { progressTracker, type ImageProgress } from "../bake/progress.ts";
import { runBake } from "../bake/run.ts";
import type { BakeResult, ServiceResult } from "../bake/types.ts";
import type { MemoryCredentialCache } from "../credentials/cache.ts";
import { describeEvent, type AgentEvent } from "../report/events.ts";
import type { Reporter } from "../report/reporter.ts";
import { bakeParts, type Runtime } from "../runtime.ts";
import type { BakeSpec } from "../spec/schema.ts";
import type { DeliveryLoop } from "./delivery-loop.ts";
import type { Metrics } from "./metrics.ts";

export type Emit = (event: AgentEvent) => Promise<void>;

/** Each event, scrubbed: a line in the journal, then to the reporter (outbox, control plane), whose loop is nudged. */
export function daemonEmit(rt: Pick<Runtime, "logger" | "scrubber">, reporter: Reporter, loop: Pick<DeliveryLoop, "nudge"> | undefined): Emit {
  return async (e) => {
    const clean = rt.scrubber.scrubValue(e);
    const fields = { event: clean.type, bakeId: clean.bakeId, service: clean.service, code: clean.error?.code };
    if (clean.error) rt.logger.warn(fields, describeEvent(clean));
    else rt.logger.info(fields, describeEvent(clean));
    await reporter.emit(clean);
    loop?.nudge();
  };
}

export interface EngineOptions {
  /** A reconcile's re-pull: under the manifest's bake, no manifest written, no progress, only its service events. */
  reconcile?: boolean;
  onResult?: (r: ServiceResult) => void;
  onInFlight?: (get: () => ImageProgress[]) => void;
  /** Written before the bake's first event (the daemon's record of it). */
  recorded?: Promise<void>;
}

export type DaemonEngine = (spec: BakeSpec, signal: AbortSignal, opts?: EngineOptions) => Promise<BakeResult>;

/** A reconcile re-pulls under an old bake's id: its bake events are nobody's news, its service events say they are a reconcile's. */
function reconcileEmit(emit: Emit): Emit {
  return (e) => (e.type.startsWith("bake.") ? Promise.resolve() : emit({ ...e, reconcile: true }));
}

export function daemonEngine(
  rt: Runtime,
  deps: { cache: MemoryCredentialCache; metrics: Metrics; reporter: Reporter; emit: Emit; makeRoom?: (signal: AbortSignal) => Promise<void> },
): DaemonEngine {
  const { metrics } = deps;
  return (spec, signal, opts = {}) => {
    // A reconcile re-pulls under an old bake's id: its progress is nobody's news.
    const tracker = opts.reconcile ? undefined : progressTracker(spec, () => rt.clock.now(), deps.reporter.progress);
    if (tracker) opts.onInFlight?.(() => tracker.inFlight());
    const resolver = rt.newResolver({
      cache: deps.cache,
      onFetch: (c, outcome) => metrics.credentialFetches.inc({ type: c.type, result: outcome }),
      onCacheHit: (c) => metrics.credentialCacheHits.inc({ type: c.type }),
    });
    return runBake(
      spec,
      {
        ...bakeParts(rt, resolver),
        ...(opts.reconcile ? { noManifest: true } : {}),
        // Called inside the bake's turn: a timed cleanup cannot run meanwhile.
        ...(deps.makeRoom ? { makeRoom: deps.makeRoom } : {}),
        ...(opts.onResult ? { onResult: opts.onResult } : {}),
        ...(opts.recorded ? { recorded: opts.recorded } : {}),
        emit: opts.reconcile ? reconcileEmit(deps.emit) : deps.emit,
        onStep: (s) => {
          // Why a cleanup ran before a bake, or why the reserve was not checked: the journal says.
          if (s.kind === "disk") rt.logger.info({ bakeId: spec.bakeId }, s.message);
          tracker?.step(s);
          metrics.observeStep(s);
        },
      },
      signal,
    );
  };
}
