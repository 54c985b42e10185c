import { describe, expect, it } from "vitest";
import type { AgentEvent } from "../report/events.ts";
import { etaSeconds, PROGRESS_EVENT_EVERY_MS, progressFields, ProgressTracker } from "./progress.ts";

const classic = { current: 30, total: 100, layers: 2, layersSized: 2, layersDownloaded: 1, layersDone: 0 };

describe("progressFields", () => {
  it("says bytes where the classic store counts them, and the total once every layer is sized", () => {
    expect(progressFields(classic)).toEqual({ bytesDone: 30, bytesTotal: 100, layers: 2, layersDownloaded: 1, layersUnpacked: 0 });
    expect(progressFields({ ...classic, layers: 3 })).toMatchObject({ bytesDone: 30, bytesTotal: null });
  });

  it("says null for bytes the containerd store hides, and still counts layers", () => {
    expect(progressFields({ current: 0, total: 0, layers: 4, layersSized: 2, layersDownloaded: 2, layersDone: 1 })).toEqual({
      bytesDone: null,
      bytesTotal: null,
      layers: 4,
      layersDownloaded: 2,
      layersUnpacked: 1,
    });
  });
});

describe("etaSeconds", () => {
  it("extrapolates the average rate where bytes are known", () => {
    expect(etaSeconds(progressFields(classic), 3000)).toBe(7);
  });

  it("is null without a total, without bytes, or once only unpacking is left", () => {
    expect(etaSeconds(progressFields({ ...classic, layers: 3 }), 3000)).toBeNull();
    expect(etaSeconds(progressFields({ ...classic, current: 0, total: 0 }), 3000)).toBeNull();
    expect(etaSeconds(progressFields({ ...classic, current: 100 }), 3000)).toBeNull();
  });
});

function tracked() {
  let now = 1_000_000;
  const sent: AgentEvent[][] = [];
  const ended: string[][] = [];
  const images: Record<string, string> = { api: "ghcr.io/acme/api:1", "api-copy": "ghcr.io/acme/api:1", db: "postgres:16" };
  const tracker = new ProgressTracker({
    bakeId: "bk_1",
    imageOf: (s) => images[s]!,
    now: () => now,
    send: (events) => sent.push(events),
    ended: (services) => ended.push(services),
  });
  return { tracker, sent, ended, advance: (ms: number) => (now += ms) };
}

const API = "ghcr.io/acme/api:1";

describe("ProgressTracker", () => {
  it("sends nothing for a pull shorter than the interval", () => {
    const { tracker, sent, ended } = tracked();
    tracker.step({ kind: "pull-start", image: API, services: ["api"] });
    tracker.step({ kind: "progress", image: API, progress: classic });
    tracker.step({ kind: "image-done", image: API, services: ["api"], status: "pulled", durationMs: 9000 });
    expect(sent).toEqual([]);
    expect(ended).toEqual([["api"]]);
  });

  it("sends at most one event per interval per image, one per service using it, with ETA where bytes are known", () => {
    const t = tracked();
    t.tracker.step({ kind: "pull-start", image: API, services: ["api", "api-copy"] });
    for (let i = 0; i < 25; i++) {
      t.advance(1000);
      t.tracker.step({ kind: "progress", image: API, progress: { ...classic, current: 4 * (i + 1) } });
    }
    expect(t.sent).toHaveLength(2);
    expect(t.sent[0]!.map((e) => [e.type, e.service, e.image])).toEqual([
      ["service.progress", "api", API],
      ["service.progress", "api-copy", API],
    ]);
    expect(t.sent[0]![0]).toMatchObject({ bakeId: "bk_1", progress: { bytesDone: 40, bytesTotal: 100, layers: 2 }, etaSeconds: 15 });
    expect(t.sent[1]![0]).toMatchObject({ progress: { bytesDone: 80 } });
    expect(t.sent.map((events) => Date.parse(events[0]!.at))).toEqual([1_010_000, 1_020_000]);
  });

  it("shows the pulls under way, and forgets an image once its pull ended", () => {
    const t = tracked();
    t.tracker.step({ kind: "pull-start", image: API, services: ["api"] });
    expect(t.tracker.inFlight()).toEqual([
      { image: API, services: ["api"], startedAt: new Date(1_000_000).toISOString(), progress: { bytesDone: null, bytesTotal: null, layers: 0, layersDownloaded: 0, layersUnpacked: 0 }, etaSeconds: null },
    ]);
    t.advance(3000);
    t.tracker.step({ kind: "progress", image: API, progress: classic });
    expect(t.tracker.inFlight()[0]).toMatchObject({ progress: { bytesDone: 30, bytesTotal: 100 }, etaSeconds: 7 });
    t.tracker.step({ kind: "image-done", image: API, services: ["api"], status: "failed", durationMs: 3000 });
    expect(t.tracker.inFlight()).toEqual([]);
    t.advance(20_000);
    t.tracker.step({ kind: "progress", image: API, progress: classic });
    expect(t.sent).toEqual([]);
  });

  it("never sends for an image that was never pulled (present or skipped)", () => {
    const t = tracked();
    t.tracker.step({ kind: "image-done", image: "docker.io/library/postgres:16", services: ["db"], status: "present", durationMs: 1 });
    expect(t.ended).toEqual([]);
    expect(PROGRESS_EVENT_EVERY_MS).toBe(10_000);
  });
});
