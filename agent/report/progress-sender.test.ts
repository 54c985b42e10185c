import { describe, expect, it } from "vitest";
import { makeEvent, type AgentEvent } from "./events.ts";
import type { PostEvent } from "./deliver.ts";
import { ProgressSender } from "./progress-sender.ts";

/** A control plane whose answers the test releases one at a time. */
function controlPlane() {
  const received: { url: string; body: AgentEvent; key: string | undefined }[] = [];
  const waiting: (() => void)[] = [];
  const post: PostEvent = (url, headers, body) => {
    received.push({ url, body: JSON.parse(body) as AgentEvent, key: headers["idempotency-key"] });
    return new Promise((resolve) => waiting.push(() => resolve(202)));
  };
  const answer = async () => {
    waiting.shift()?.();
    await new Promise((r) => setImmediate(r));
  };
  return { post, received, answer, waiting };
}

const progress = (service: string, bytesDone: number, bakeId = "bk_1") =>
  makeEvent("service.progress", bakeId, Date.now(), { service, image: `${service}:1`, progress: { bytesDone, bytesTotal: 100, layers: 1, layersDownloaded: 0, layersUnpacked: 0 }, etaSeconds: null });

const sender = (post: PostEvent) => new ProgressSender({ controlPlaneUrl: "http://127.0.0.1:9/", token: "t", boxId: "box 1", post });

describe("ProgressSender", () => {
  it("posts to the bake's events URL, one request at a time, a newer event replacing one not yet sent", async () => {
    const cp = controlPlane();
    const s = sender(cp.post);
    s.offer([progress("api", 10)]);
    s.offer([progress("api", 20)]);
    s.offer([progress("api", 30), progress("db", 5)]);
    expect(cp.received.map((r) => r.body.progress)).toEqual([expect.objectContaining({ bytesDone: 10 })]);
    expect(cp.received[0]!.url).toBe("http://127.0.0.1:9/v1/boxes/box%201/bakes/bk_1/events");
    await cp.answer();
    await cp.answer();
    await cp.answer();
    expect(cp.received.map((r) => [r.body.service, (r.body.progress as { bytesDone: number }).bytesDone])).toEqual([
      ["api", 10],
      ["api", 30],
      ["db", 5],
    ]);
    expect(cp.received.map((r) => r.key)).toEqual(cp.received.map((r) => r.body.id));
    expect(s.sent).toBe(3);
  });

  it("sends nothing for a service once its pull ended, and its final event waits for a progress request on its way", async () => {
    const cp = controlPlane();
    const s = sender(cp.post);
    s.offer([progress("api", 10)]);
    s.offer([progress("api", 20)]);
    let settled = false;
    const final = s.settle(makeEvent("service.pulled", "bk_1", Date.now(), { service: "api" })).then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    await cp.answer();
    await final;
    s.offer([progress("api", 40)]);
    await cp.answer();
    expect(cp.received.map((r) => (r.body.progress as { bytesDone: number }).bytesDone)).toEqual([10]);
  });

  it("ends a pull's progress when told the pull ended, before any final event", async () => {
    const cp = controlPlane();
    const s = sender(cp.post);
    s.offer([progress("api", 10), progress("worker", 10)]);
    s.end("bk_1", ["worker"]);
    s.offer([progress("worker", 50)]);
    await cp.answer();
    await cp.answer();
    expect(cp.received.map((r) => r.body.service)).toEqual(["api"]);
  });

  it("drops a failed request and goes on: progress is best effort", async () => {
    let calls = 0;
    const s = sender(async () => {
      calls += 1;
      if (calls === 1) throw new Error("connect ECONNREFUSED 127.0.0.1:9");
      return 503;
    });
    s.offer([progress("api", 10)]);
    await new Promise((r) => setImmediate(r));
    s.offer([progress("api", 20)]);
    await s.stop();
    expect(calls).toBe(2);
    expect(s.sent).toBe(0);
  });

  it("stops: what waits is dropped, the request on its way finishes", async () => {
    const cp = controlPlane();
    const s = sender(cp.post);
    s.offer([progress("api", 10), progress("db", 10)]);
    const stopped = s.stop();
    await cp.answer();
    await stopped;
    s.offer([progress("api", 20)]);
    await cp.answer();
    expect(cp.received).toHaveLength(1);
  });
});

describe("ProgressSender and a control plane that never answers", () => {
  it("holds a final event only for the request on its way, not for the queue behind it", async () => {
    const cp = controlPlane();
    const s = sender(cp.post);
    s.offer([progress("api", 10), progress("web", 10), progress("db", 10), progress("cache", 10)]);
    const final = s.settle(makeEvent("service.pulled", "bk_1", Date.now(), { service: "web" }));
    await cp.answer();
    await final;
    // Only the request on its way was waited for: the others still wait their turn.
    expect(cp.received.map((r) => r.body.service)).toEqual(["api", "db"]);
    const stopped = s.stop();
    await cp.answer();
    await stopped;
  });
});
