// Live progress of a bake's pulls (docs/reference.md §7 `service.progress`, GET /v1/bakes/<id>):
// the engine's per-layer counts normalised for both image stores — the classic
// store counts bytes; the containerd store counts them while a layer downloads
// on 28.5 but hides them on its other lines and on some engines — with what is
// not known said as null rather than guessed. Events go out at most
// every 10 s per image and never for a pull shorter than that; none once the
// image's pull has ended.
import type { Progress } from "../docker/types.ts";
import { makeEvent, type AgentEvent } from "../report/events.ts";
import type { BakeSpec } from "../spec/schema.ts";
import type { BakeStep } from "./types.ts";

export const PROGRESS_EVENT_EVERY_MS = 10_000;

export interface ProgressFields {
  /** null until the engine counts a byte, and wherever it hides byte counts (the containerd store may). */
  bytesDone: number | null;
  /** null until every layer is sized (the engine sizes a layer only when it starts downloading it), or where bytes are hidden. */
  bytesTotal: number | null;
  layers: number;
  layersDownloaded: number;
  layersUnpacked: number;
}

export interface ImageProgress {
  image: string;
  services: string[];
  startedAt: string;
  progress: ProgressFields;
  etaSeconds: number | null;
}

export function progressFields(p: Progress): ProgressFields {
  const counted = p.current > 0 || p.total > 0;
  return {
    bytesDone: counted ? p.current : null,
    bytesTotal: counted && p.layers > 0 && p.layersSized === p.layers ? p.total : null,
    layers: p.layers,
    layersDownloaded: p.layersDownloaded,
    layersUnpacked: p.layersDone,
  };
}

/** Seconds left at the pull's average rate so far; null where bytes are not known, or all downloaded and only unpacking is left. */
export function etaSeconds(f: ProgressFields, elapsedMs: number): number | null {
  if (f.bytesTotal === null || f.bytesDone === null || f.bytesDone <= 0 || elapsedMs <= 0 || f.bytesDone >= f.bytesTotal) return null;
  return Math.ceil((f.bytesTotal - f.bytesDone) / (f.bytesDone / elapsedMs) / 1000);
}

interface Pull {
  services: string[];
  startedAt: number;
  lastSent: number;
  /** The engine's counts as last seen: normalised only when sent or read, not on every line of the pull. */
  latest?: Progress;
}

export interface ProgressTrackerOptions {
  bakeId: string;
  /** The image as the spec names it for `service` (what service.pulled carries). */
  imageOf: (service: string) => string;
  now: () => number;
  /** Where service.progress events go (best effort); none without a control plane. */
  send?: (events: AgentEvent[]) => void;
  /** The pull of these services ended: nothing more may be sent for them. */
  ended?: (services: string[]) => void;
}

/** Follows one bake's steps; call `step` with each. */
export class ProgressTracker {
  private readonly pulls = new Map<string, Pull>();
  private readonly opts: ProgressTrackerOptions;

  constructor(opts: ProgressTrackerOptions) {
    this.opts = opts;
  }

  step(s: BakeStep): void {
    const { opts } = this;
    switch (s.kind) {
      case "pull-start": {
        const now = opts.now();
        this.pulls.set(s.image, { services: s.services, startedAt: now, lastSent: now });
        return;
      }
      case "progress": {
        const p = this.pulls.get(s.image);
        if (!p) return;
        p.latest = s.progress;
        const now = opts.now();
        if (!opts.send || now - p.lastSent < PROGRESS_EVENT_EVERY_MS) return;
        p.lastSent = now;
        const progress = progressFields(p.latest);
        const fields = { progress, etaSeconds: etaSeconds(progress, now - p.startedAt) };
        opts.send(p.services.map((service) => makeEvent("service.progress", opts.bakeId, now, { service, image: opts.imageOf(service), ...fields })));
        return;
      }
      case "image-done":
        if (this.pulls.delete(s.image)) opts.ended?.(s.services);
        return;
      default:
        return;
    }
  }

  /** The pulls under way and how far each has come. */
  inFlight(): ImageProgress[] {
    const now = this.opts.now();
    return [...this.pulls.entries()].map(([image, p]) => {
      const progress = p.latest ? progressFields(p.latest) : { bytesDone: null, bytesTotal: null, layers: 0, layersDownloaded: 0, layersUnpacked: 0 };
      return { image, services: p.services, startedAt: new Date(p.startedAt).toISOString(), progress, etaSeconds: etaSeconds(progress, now - p.startedAt) };
    });
  }
}

/** Where service.progress events go: the control plane's best-effort sender (report/progress-sender.ts). */
export interface ProgressSink {
  offer(events: AgentEvent[]): void;
  end(bakeId: string, services: string[]): void;
}

/** The tracker of one bake, sending to `sink` where there is a control plane. */
export function progressTracker(spec: BakeSpec, now: () => number, sink?: ProgressSink): ProgressTracker {
  const images = new Map(spec.services.map((s) => [s.name, s.image]));
  return new ProgressTracker({
    bakeId: spec.bakeId,
    imageOf: (service) => images.get(service) ?? "",
    now,
    ...(sink ? { send: (events) => sink.offer(events), ended: (services) => sink.end(spec.bakeId, services) } : {}),
  });
}
