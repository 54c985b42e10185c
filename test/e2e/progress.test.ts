// Live progress (SPEC §7 service.progress, GET /v1/bakes/<id>, /metrics): a slow
// pull of a large image is followed while it runs — by the control plane from a
// Packer bake (`bake`) and from the daemon, and in the daemon's API — on the
// classic store (bytes) and the containerd store (bytes while a layer downloads,
// null where the engine hides them);
// a fast pull sends none; nothing arrives after the image's final event.
import Docker from "dockerode";
import { describe, expect, inject, it } from "vitest";
import { kept } from "../stack/control-plane.ts";
import { pushRandomImage, type PushedImage } from "../stack/images.ts";
import { slowBlobs } from "../stack/registry-front.ts";
import { dockerImage, newBox, parseJsonResult, uid } from "./harness.ts";
import { awsAndControlPlane } from "./lifecycle.ts";
import { bakeDone, startDaemon, until } from "./daemon-harness.ts";

const stack = inject("stack");
const docker = new Docker({ socketPath: stack.socketPath });
const containerdStore = stack.engine.store === "containerd";
const { aws, cp, boxes } = awsAndControlPlane();
const { quay } = stack.registries;

/** Three layers of 4 MB of random bytes, each blob served at 150 kB/s: a pull of ~27 s, three or so progress events. */
const LAYERS = 3;
const LAYER_BYTES = 4_000_000;
const BYTES_PER_SECOND = 150_000;

async function slowImage(): Promise<PushedImage> {
  const img = await pushRandomImage(quay.push, `acme/progress-${uid()}`, "1", { layers: LAYERS, bytes: LAYER_BYTES });
  await slowBlobs(quay.control, img.repository, BYTES_PER_SECOND, LAYERS + 1);
  return img;
}

interface Progress {
  bytesDone: number | null;
  bytesTotal: number | null;
  layers: number;
  layersDownloaded: number;
  layersUnpacked: number;
}

/** What the control plane was told of `bakeId`, in the order it arrived. */
const told = (bakeId: string) => cp.deliveries.filter((d) => d.bakeId === bakeId && d.status < 300).map((d) => d.body);

function expectAdvancing(events: Record<string, unknown>[], img: PushedImage): void {
  const lines = JSON.stringify(events);
  expect(events.length, lines).toBeGreaterThanOrEqual(2);
  const progress = events.map((e) => e["progress"] as Progress);
  for (const [i, p] of progress.entries()) {
    expect(p.layers, lines).toBe(LAYERS);
    // Bytes where the engine counts them (the classic store always; the containerd store while a layer downloads), said null where it does not.
    if (!containerdStore) expect(p.bytesDone, lines).not.toBeNull();
    if (p.bytesDone !== null) expect(p.bytesDone, lines).toBeGreaterThan(0);
    if (p.bytesTotal !== null) expect(p.bytesTotal, lines).toBe(img.bytes);
    if (p.bytesTotal === null) expect(events[i]!["etaSeconds"], lines).toBeNull();
    if (i === 0) continue;
    const prev = progress[i - 1]!;
    const bytesKnown = p.bytesDone !== null && prev.bytesDone !== null;
    expect(p.layersDownloaded >= prev.layersDownloaded && p.layersUnpacked >= prev.layersUnpacked && (!bytesKnown || p.bytesDone! >= prev.bytesDone!), lines).toBe(true);
    expect((bytesKnown && p.bytesDone! > prev.bytesDone!) || p.layersDownloaded > prev.layersDownloaded || p.layersUnpacked > prev.layersUnpacked, lines).toBe(true);
  }
  // At most every 10 s per image: the events' own times.
  const at = events.map((e) => Date.parse(String(e["at"])));
  for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!, lines).toBeGreaterThanOrEqual(10_000);
}

// The classic store's bytes are proven on 20.10 (the integration project); the newer engines add the containerd store.
describe.runIf(stack.engine.version === "20.10" || containerdStore)("live progress", () => {
  it("a Packer bake (`bake`) tells the control plane how a slow pull advances, nothing of a fast one, and nothing after the image's final event", async () => {
    const [slow, fast] = await Promise.all([slowImage(), pushRandomImage(quay.push, `acme/quick-${uid()}`, "1", { layers: 1 })]);
    const b = newBox(stack, aws, { controlPlane: cp });
    boxes.push(b);
    // Baked apart: beside the slow pull the small image's layer would wait for the engine's download slots, and that is a slow pull too.
    const quick = { bakeId: `bk_${uid()}`, orgId: "org_123", registryCredentials: [], services: [{ name: "small", image: fast.reference }] };
    const q = await b.run(["bake", "--spec", b.write("quick.json", quick), "--json"]);
    expect(q.code, q.stdout + q.stderr).toBe(0);
    // Bounded by the outcome, not the clock: a pull under 10 s sends none; one a busy machine made longer may send some, from 10 s on.
    const quickMs = parseJsonResult(q).services[0]!.durationMs;
    const quickProgress = told(quick.bakeId).filter((e) => e["type"] === "service.progress");
    if (quickMs < 10_000) expect(quickProgress).toEqual([]);
    expect(told(quick.bakeId).map((e) => e["type"]).filter(kept)).toEqual(["bake.started", "service.pulled", "bake.succeeded"]);

    const s = { bakeId: `bk_${uid()}`, orgId: "org_123", registryCredentials: [], services: [{ name: "big", image: slow.reference }] };
    const r = await b.run(["bake", "--spec", b.write("spec.json", s)], { timeoutMs: 150_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await dockerImage(docker, slow.reference))?.digests).toContain(slow.digest);

    const events = told(s.bakeId);
    const progress = events.filter((e) => e["type"] === "service.progress");
    expect(progress.every((e) => e["service"] === "big" && e["image"] === slow.reference), JSON.stringify(progress)).toBe(true);
    expectAdvancing(progress, slow);
    const final = events.findIndex((e) => e["type"] === "service.pulled" && e["service"] === "big");
    expect(final).toBeGreaterThan(events.lastIndexOf(progress.at(-1)!));
    // Progress is never kept in the outbox: nothing of it is left for the daemon.
    expect(r.stdout).toMatch(/events: \d+ delivered/);
  }, 200_000);

  it("the daemon shows it in GET /v1/bakes/<id> while the pull runs, and sends it to the control plane", async () => {
    const slow = await slowImage();
    const b = newBox(stack, aws, { controlPlane: cp });
    boxes.push(b);
    const d = await startDaemon(b);
    try {
      const s = { bakeId: `bk_${uid()}`, orgId: "org_123", registryCredentials: [], services: [{ name: "big", image: slow.reference }] };
      expect((await d.api("POST", "/v1/bakes", s)).status).toBe(202);
      const seen = await until(
        async () => {
          const rec = (await d.api("GET", `/v1/bakes/${s.bakeId}`)).json;
          const inFlight = rec["inFlight"] as { image: string; services: string[]; progress: Progress }[] | undefined;
          return inFlight?.find((p) => p.progress.layersDownloaded > 0 || (p.progress.bytesDone ?? 0) > 0);
        },
        90_000,
        "progress in GET /v1/bakes/<id>",
      );
      expect(seen).toMatchObject({ image: `quay.io/${slow.repository}:1`, services: ["big"], progress: { layers: LAYERS } });
      const done = await bakeDone(d, s.bakeId, 120_000);
      expect(done).toMatchObject({ status: "succeeded" });
      expect(done["inFlight"]).toBeUndefined();
      await until(() => told(s.bakeId).some((e) => e["type"] === "bake.succeeded"), 30_000, "bake.succeeded delivered");
      const events = told(s.bakeId);
      const progress = events.filter((e) => e["type"] === "service.progress");
      expectAdvancing(progress, slow);
      const final = events.findIndex((e) => e["type"] === "service.pulled");
      expect(final).toBeGreaterThan(events.lastIndexOf(progress.at(-1)!));
      const metrics = await fetch(`${d.url}/metrics`).then((res) => res.text());
      expect(metrics).toMatch(/slothbox_pull_duration_seconds_count\{registry="quay\.io"\} 1/);
      if (!containerdStore) expect(Number(/slothbox_pull_bytes_total\{registry="quay\.io"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(slow.bytes);
    } finally {
      await d.stop();
    }
  }, 240_000);
});
