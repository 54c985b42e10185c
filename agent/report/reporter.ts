// Where the agent's events go, a `bake`'s and the daemon's alike: into the
// outbox first (nothing lost), then out to the control plane by the Deliverer
// (at the end of a `bake`; the daemon's DeliveryLoop all along);
// service.progress straight out, best effort, while the pulls run. With no
// control plane, or --no-report, events are only shown in the command's own
// output (the daemon's journal).
import type { AgentEvent } from "./events.ts";
import type { Deliverer } from "./deliver.ts";
import type { ProgressSender } from "./progress-sender.ts";
import type { Outbox } from "../state/outbox.ts";

export class Reporter {
  /** Where undelivered events wait; there whether or not this reporter sends (the daemon shows its depth). */
  readonly outbox: Outbox;
  readonly deliverer: Deliverer | undefined;
  readonly progress: ProgressSender | undefined;
  private readonly boxId: string;

  constructor(outbox: Outbox, sending?: { boxId: string; deliverer: Deliverer; progress?: ProgressSender }) {
    this.outbox = outbox;
    this.boxId = sending?.boxId ?? "";
    this.deliverer = sending?.deliverer;
    this.progress = sending?.progress;
  }

  get enabled(): boolean {
    return this.deliverer !== undefined;
  }

  async emit(event: AgentEvent): Promise<void> {
    if (!this.deliverer) return;
    await this.progress?.settle(event);
    await this.outbox.put(this.boxId, event.bakeId, event);
  }

  /** Delivers what it can within `ms`; what is left stays in the outbox. */
  async flush(ms: number): Promise<{ delivered: number; pending: number }> {
    if (!this.deliverer) return { delivered: 0, pending: 0 };
    const budget = AbortSignal.timeout(ms);
    // A progress report on its way is let finish (the final events must come after it), within the same budget.
    if (this.progress) await Promise.race([this.progress.stop(), new Promise((resolve) => budget.addEventListener("abort", resolve, { once: true }))]);
    const before = this.deliverer.delivered;
    await this.deliverer.drain(budget);
    return { delivered: this.deliverer.delivered - before, pending: await this.outbox.depth() };
  }
}
