// The daemon's bakes: one at a time (reconcile takes the same turn), each with
// a record that GET /v1/bakes/<id> answers (per-service results as they come),
// kept in <stateDir>/bakes/ so that a restart still knows it. A bake that was
// running when the agent died becomes failed with `interrupted` on the next
// start, and a bake.failed event says so, exactly once (its event id is fixed,
// so a crash between writing the event and the record only repeats an event the
// control plane deduplicates by its Idempotency-Key).
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { Clock } from "../clock.ts";
import type { ImageProgress } from "../bake/progress.ts";
import type { BakeResult, ServiceResult } from "../bake/types.ts";
import { AgentError, asAgentError, type ErrorBody } from "../errors/agent-error.ts";
import { makeEvent, type AgentEvent } from "../report/events.ts";
import { listStateFiles, writeFileAtomic } from "../state/atomic.ts";
import type { BakeSpec } from "../spec/schema.ts";

/** Records kept on disk; older ones are pruned. */
const KEEP_RECORDS = 200;

export interface BakeRecord {
  bakeId: string;
  status: "running" | "succeeded" | "failed";
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  services: ServiceResult[];
  /** While it runs: each image being pulled and how far it has come. */
  inFlight?: ImageProgress[];
  error?: ErrorBody;
}

export type Submit =
  | { kind: "started"; record: BakeRecord }
  | { kind: "known"; record: BakeRecord }
  | { kind: "busy"; running: string };

/** `onInFlight` hands the runner a way to read the pulls under way, asked for when the record is read. */
export type Engine = (
  spec: BakeSpec,
  signal: AbortSignal,
  onService: (s: ServiceResult) => void,
  onInFlight: (get: () => ImageProgress[]) => void,
  /** The bake's record, being written: the bake starts meanwhile, and waits for it before its first event. */
  recorded: Promise<void>,
) => Promise<BakeResult>;

export class BakeRunner {
  private readonly dir: string;
  private readonly engine: Engine;
  private readonly clock: Clock;
  private readonly onError: (err: unknown) => void;
  private readonly records = new Map<string, BakeRecord>();
  private turn: Promise<void> = Promise.resolve();
  /** The bake submitted and not yet ended, running or waiting its turn. */
  private pending: string | undefined;
  private controller: AbortController | undefined;
  /** Set once the daemon stops: why everything still queued is aborted. */
  private stopping: Error | undefined;
  private last: BakeRecord | undefined;

  private readonly report: (event: AgentEvent) => Promise<void>;
  private readonly onStart: (spec: BakeSpec) => void;

  /** `onStart` hears of each bake accepted, before it runs; never of a spec refused (busy) or already known. */
  constructor(opts: {
    stateDir: string;
    engine: Engine;
    clock: Clock;
    onError: (err: unknown) => void;
    report: (event: AgentEvent) => Promise<void>;
    onStart?: (spec: BakeSpec) => void;
  }) {
    this.dir = path.join(opts.stateDir, "bakes");
    this.engine = opts.engine;
    this.clock = opts.clock;
    this.onError = opts.onError;
    this.report = opts.report;
    this.onStart = opts.onStart ?? (() => undefined);
  }

  /** The bake running or waiting for its turn. */
  get running(): string | undefined {
    return this.pending;
  }

  get lastBake(): BakeRecord | undefined {
    return this.last;
  }

  /** Loads the records on disk; those left `running` by a crash become failed (interrupted) and are reported. */
  async recover(): Promise<void> {
    // A records directory that cannot be listed holds nothing to recover.
    for (const f of await listStateFiles(this.dir).catch(() => [])) {
      try {
        const r = JSON.parse(await readFile(path.join(this.dir, f), "utf8")) as BakeRecord;
        if (r.status === "running") {
          const error = new AgentError("interrupted", "the agent stopped while this bake was running (killed, crashed or the box lost power); no manifest was written").toBody();
          const event = { ...makeEvent("bake.failed", r.bakeId, this.clock.now(), { error }), id: `evt_interrupted_${r.bakeId}` };
          await this.report(event);
          r.status = "failed";
          r.finishedAt = new Date(this.clock.now()).toISOString();
          r.error = error;
          await this.persist(r);
        }
        this.records.set(r.bakeId, r);
        if (!this.last || r.startedAt > this.last.startedAt) this.last = r;
      } catch (err) {
        this.onError(err);
      }
    }
  }

  get(bakeId: string): BakeRecord | undefined {
    return this.records.get(bakeId);
  }

  submit(spec: BakeSpec): Submit {
    const known = this.records.get(spec.bakeId);
    if (known) return { kind: "known", record: known };
    // One bake at a time (docs/reference.md §8); a reconcile or a cleanup in progress only makes a bake wait its turn.
    if (this.pending) return { kind: "busy", running: this.pending };
    this.onStart(spec);
    this.pending = spec.bakeId;
    const record: BakeRecord = { bakeId: spec.bakeId, status: "running", startedAt: new Date(this.clock.now()).toISOString(), services: [] };
    this.records.set(spec.bakeId, record);
    this.last = record;
    void this.exclusive(async (signal) => {
      // Written while the bake asks Docker and AWS what needs no record; a record that cannot be written fails the bake.
      const recorded = this.persist(record);
      recorded.catch(() => undefined);
      try {
        const result = await this.engine(
          spec,
          signal,
          (s) => {
            record.services = [...record.services.filter((x) => x.name !== s.name), s];
          },
          // A getter, so that what is read (and serialised) is the progress of that moment, at no cost per progress line.
          (get) => Object.defineProperty(record, "inFlight", { enumerable: true, configurable: true, get }),
          recorded,
        );
        await recorded;
        record.services = result.services;
        record.status = result.status;
        if (result.error) record.error = result.error;
      } catch (err) {
        // The bake could not run to its end (its record could not be written: a full disk): it failed, and says why.
        record.status = "failed";
        record.error = asAgentError(err).toBody();
      } finally {
        delete record.inFlight;
        record.finishedAt = new Date(this.clock.now()).toISOString();
        record.durationMs = Date.parse(record.finishedAt) - Date.parse(record.startedAt);
        // How it ended is known: the next bake may queue, while this one is filed.
        this.pending = undefined;
      }
      // The record's first write ends before its last starts (a bake that failed before awaiting it).
      await recorded.catch(() => undefined);
      await this.persist(record);
      await this.prune();
    });
    return { kind: "started", record };
  }

  /** Runs `fn` alone: bakes, reconciles and cleanups never overlap. */
  exclusive(fn: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const run = this.turn.then(async () => {
      this.controller = new AbortController();
      // Queued behind what ran when the daemon began to stop: it starts aborted (a bake ends `interrupted`, reported).
      if (this.stopping) this.controller.abort(this.stopping);
      try {
        await fn(this.controller.signal);
      } catch (err) {
        this.onError(err);
      } finally {
        this.controller = undefined;
      }
    });
    this.turn = run;
    return run;
  }

  /** Aborts what runs (a bake ends `interrupted` for `reason`) and waits at most `ms` for it to end. */
  async stop(ms: number, reason: string): Promise<void> {
    this.stopping = new Error(reason);
    this.controller?.abort(this.stopping);
    const waited = new AbortController();
    await Promise.race([this.turn, this.clock.sleep(ms, waited.signal).catch(() => undefined)]);
    waited.abort();
  }

  private async persist(r: BakeRecord): Promise<void> {
    await writeFileAtomic(path.join(this.dir, `${r.bakeId}.json`), JSON.stringify(r));
  }

  private async prune(): Promise<void> {
    // ISO times sort as plain strings; localeCompare would load ICU's collation data (+3 MB RSS, measured).
    const all = [...this.records.values()].sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
    for (const r of all.slice(0, Math.max(0, all.length - KEEP_RECORDS))) {
      this.records.delete(r.bakeId);
      await rm(path.join(this.dir, `${r.bakeId}.json`), { force: true });
    }
  }
}
