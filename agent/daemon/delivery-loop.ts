// The daemon's delivery of the outbox: its own events and those a `bake` left.
// Runs until stopped; after a failure it backs off (full jitter) and tries
// again, across restarts too, since the outbox is on disk. New events nudge it.
import { watch, type FSWatcher } from "node:fs";
import type { Clock } from "../clock.ts";
import type { Deliverer } from "../report/deliver.ts";
import type { Logger } from "../log.ts";
import { mkdirShared } from "../state/atomic.ts";

/** Even with nothing nudging it, look at the outbox this often. */
const IDLE_POLL_MS = 30_000;

export class DeliveryLoop {
  private readonly deliverer: Pick<Deliverer, "drainOnce" | "backoffMs" | "drain">;
  private readonly logger: Logger;
  private readonly clock: Pick<Clock, "sleep">;
  private wake: (() => void) | undefined;
  private dirty = false;
  private readonly stopper = new AbortController();
  private done: Promise<void> | undefined;

  constructor(deliverer: Pick<Deliverer, "drainOnce" | "backoffMs" | "drain">, logger: Logger, clock: Pick<Clock, "sleep">) {
    this.deliverer = deliverer;
    this.logger = logger;
    this.clock = clock;
  }

  start(): void {
    this.done ??= this.run();
  }

  nudge(): void {
    this.dirty = true;
    this.wake?.();
  }

  /** Waits `ms`, or less when nudged or stopped. */
  private sleep(ms: number): Promise<void> {
    const woken = new AbortController();
    this.wake = () => woken.abort();
    return this.clock.sleep(ms, AbortSignal.any([this.stopper.signal, woken.signal])).catch(() => undefined);
  }

  private async run(): Promise<void> {
    while (!this.stopper.signal.aborted) {
      this.dirty = false;
      let blocked: boolean;
      try {
        blocked = (await this.deliverer.drainOnce(this.stopper.signal)).blocked;
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, "outbox delivery failed");
        blocked = true;
      }
      if (this.stopper.signal.aborted) break;
      if (blocked) await this.sleep(Math.max(100, this.deliverer.backoffMs()));
      else if (!this.dirty) await this.sleep(IDLE_POLL_MS);
    }
  }

  /** Stops the loop, then spends at most `ms` delivering what is left. */
  async stop(ms: number): Promise<void> {
    this.stopper.abort();
    this.wake?.();
    await this.done;
    await this.deliverer.drain(AbortSignal.timeout(ms));
  }
}

/** Calls `onChange` when a file appears in the outbox (inotify); undefined when it cannot watch (the poll remains). */
export async function watchOutbox(dir: string, onChange: () => void, onError: (err: Error) => void): Promise<FSWatcher | undefined> {
  try {
    await mkdirShared(dir);
    const w = watch(dir, { persistent: false }, (_event, name) => {
      if (name?.endsWith(".json")) onChange();
    });
    w.on("error", onError);
    return w;
  } catch (err) {
    onError(err as Error);
    return undefined;
  }
}
