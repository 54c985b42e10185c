// service.progress to the control plane (docs/reference.md §7), best effort: never in the
// outbox (a progress report is stale by the time a retry would send it), one
// request at a time, a newer event for a service replacing one not yet sent,
// failures dropped. Nothing is sent for a service once its pull has ended, and
// a service's final event waits for the one progress request already on its way
// (at most its 2 s bound), so the control plane does not hear of progress after
// service.pulled/failed — save for a request the bound cut off after its body
// was sent, which a slow control plane may still process late.
import type { AgentEvent } from "./events.ts";
import { eventHeaders, eventsUrl, type PostEvent } from "./deliver.ts";

/** Shorter than an outbox delivery's bound: a stale progress report is worth little, and a final event may wait for it. */
const PROGRESS_REQUEST_TIMEOUT_MS = 2000;

export interface ProgressSenderDeps {
  controlPlaneUrl: string;
  token: string;
  boxId: string;
  post: PostEvent;
  timeoutMs?: number;
}

const keyOf = (bakeId: string, service: string) => `${bakeId}\n${service}`;

export class ProgressSender {
  private readonly deps: ProgressSenderDeps;
  private readonly pending = new Map<string, AgentEvent>();
  /** Services whose pull ended, by bake: their progress is over. */
  private readonly ended = new Set<string>();
  /** The pump, while events wait or a request is on its way. */
  private inFlight: Promise<void> | undefined;
  /** The one request on its way, which a final event waits for. */
  private current: Promise<unknown> | undefined;
  /** Bakes that offered progress: only their final events are remembered, and forgotten at the bake's end. */
  private readonly bakes = new Set<string>();
  private stopped = false;
  sent = 0;

  constructor(deps: ProgressSenderDeps) {
    this.deps = deps;
  }

  offer(events: AgentEvent[]): void {
    if (this.stopped) return;
    for (const e of events) {
      this.bakes.add(e.bakeId);
      const key = keyOf(e.bakeId, e.service ?? "");
      if (this.ended.has(key)) continue;
      // Deleted first so that the newest goes to the back of the line.
      this.pending.delete(key);
      this.pending.set(key, e);
    }
    this.kick();
  }

  private kick(): void {
    if (this.inFlight || this.pending.size === 0 || this.stopped) return;
    this.inFlight = this.pump().finally(() => {
      this.inFlight = undefined;
      this.kick();
    });
  }

  /** The pull of `services` ended: what waits for them is dropped, and nothing later is sent. */
  end(bakeId: string, services: string[]): void {
    if (!this.bakes.has(bakeId)) return;
    for (const s of services) {
      const key = keyOf(bakeId, s);
      this.ended.add(key);
      this.pending.delete(key);
    }
  }

  /**
   * Called before `event` is written to the outbox. A service's final event ends
   * its progress and waits for a request already on its way; the bake's own end
   * forgets the bake.
   */
  async settle(event: AgentEvent): Promise<void> {
    if ((event.type === "service.pulled" || event.type === "service.failed") && event.service !== undefined) {
      this.end(event.bakeId, [event.service]);
      await this.current;
    } else if (event.type === "bake.succeeded" || event.type === "bake.failed") {
      const prefix = keyOf(event.bakeId, "");
      for (const key of this.ended) if (key.startsWith(prefix)) this.ended.delete(key);
      for (const key of this.pending.keys()) if (key.startsWith(prefix)) this.pending.delete(key);
      this.bakes.delete(event.bakeId);
      await this.current;
    }
  }

  /** Drops what waits and lets a request on its way finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.pending.clear();
    await this.inFlight;
  }

  private async pump(): Promise<void> {
    const { deps } = this;
    for (let next = this.pending.entries().next(); !next.done && !this.stopped; next = this.pending.entries().next()) {
      const [key, event] = next.value;
      this.pending.delete(key);
      const request = deps
        .post(eventsUrl(deps.controlPlaneUrl, deps.boxId, event.bakeId), eventHeaders(deps.token, event.id), JSON.stringify(event), AbortSignal.timeout(deps.timeoutMs ?? PROGRESS_REQUEST_TIMEOUT_MS))
        .catch(() => 0);
      this.current = request;
      const status = await request;
      this.current = undefined;
      if (status >= 200 && status < 300) this.sent += 1;
    }
  }
}
