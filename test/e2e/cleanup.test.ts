// Image cleanup on a live box (SPEC §8), against the real engine of each matrix
// project: the daemon removes what the agent pulled and the kept bakes no longer
// name, and nothing else; bakes and cleanups take turns; a restart mid-cleanup
// leaves the box consistent.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import Docker from "dockerode";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { pushRandomImage, type PushedImage } from "../stack/images.ts";
import { startDaemon, until, type Daemon } from "./daemon-harness.ts";
import { dockerImage, newBox, uid, type Box } from "./harness.ts";

const stack = inject("stack");
const docker = new Docker({ socketPath: stack.socketPath });
const aws = new AwsStandIn();
const { quay, stall } = stack.registries;
const boxes: Box[] = [];
const daemons: Daemon[] = [];
const containers: string[] = [];
const handTags: string[] = [];
const spec = (images: PushedImage[] | string[], bakeId = `bk_${uid()}`) => ({
  bakeId,
  orgId: "org_1",
  registryCredentials: [],
  services: images.map((i, n) => ({ name: `s${n}`, image: typeof i === "string" ? i : i.reference })),
});
const FAST = { imageCleanupIntervalSeconds: 1, imageCleanupMinAgeSeconds: 0, imageCleanupKeepBakes: 1 };

function box(config: Record<string, unknown> = FAST): Box {
  const b = newBox(stack, aws, { config });
  boxes.push(b);
  return b;
}
async function daemon(b: Box): Promise<Daemon> {
  const d = await startDaemon(b);
  daemons.push(d);
  return d;
}
async function bake(d: Daemon, images: PushedImage[] | string[]): Promise<Record<string, unknown>> {
  const s = spec(images);
  expect((await d.api("POST", "/v1/bakes", s)).status).toBe(202);
  const done = await until(async () => {
    const r = await d.api("GET", `/v1/bakes/${s.bakeId}`);
    return r.json["status"] !== "running" ? r.json : undefined;
  }, 60_000, `bake ${s.bakeId}`);
  expect(done).toMatchObject({ status: "succeeded" });
  return done;
}
/**
 * A box whose daemon baked each of `bakes` in turn with cleanup held off (a long
 * interval), then stopped; a daemon started on it again cleans up within a second.
 */
async function bakedThenDue(bakes: PushedImage[][], config: Record<string, unknown> = {}): Promise<Box> {
  const b = box({ ...FAST, imageCleanupIntervalSeconds: 3600, ...config });
  const d = await daemon(b);
  for (const images of bakes) await bake(d, images);
  await d.stop("SIGTERM");
  b.write("agent.json", { ...JSON.parse(readFileSync(b.configFile, "utf8")), imageCleanupIntervalSeconds: 1 });
  return b;
}
/**
 * Resolves at the engine's first untag or delete of one of `images` (other tests
 * share the engine: their removals do not count); `stop` ends the watch. The
 * classic store names the image by its ID in these events, the containerd store
 * by its reference: both are matched.
 */
async function firstRemovalOf(images: PushedImage[]): Promise<{ removed: Promise<void>; stop: () => void }> {
  const repos = images.map((i) => `${i.reference.split(":").slice(0, -1).join(":")}:`);
  const ids = new Set((await Promise.all(images.map((i) => dockerImage(docker, i.reference)))).map((i) => i?.id));
  const events = (await docker.getEvents({ filters: { type: ["image"] } })) as NodeJS.ReadableStream & { destroy(): void };
  const removed = new Promise<void>((resolve) =>
    events.on("data", (c: Buffer) => {
      for (const line of c.toString().split("\n")) {
        let e: { Action?: string; id?: string; Actor?: { ID?: string; Attributes?: { name?: string } } };
        try {
          e = JSON.parse(line) as typeof e;
        } catch {
          continue;
        }
        const name = e.Actor?.Attributes?.name ?? "";
        const ours = ids.has(e.Actor?.ID ?? e.id) || ids.has(name) || repos.some((r) => name.startsWith(r));
        if ((e.Action === "untag" || e.Action === "delete") && ours) resolve();
      }
    }),
  );
  return { removed, stop: () => events.destroy() };
}
/**
 * Eight images of a first bake, then two later bakes, and a daemon whose first
 * cleanup has just removed one of the first bake's images: caught mid-cleanup.
 */
async function daemonMidCleanup(prefix: string): Promise<{ olds: PushedImage[]; v2: PushedImage; v3: PushedImage; b: Box; d: Daemon }> {
  const olds = await Promise.all(Array.from({ length: 8 }, (_, i) => push(`${prefix}${i}`)));
  const [v2, v3] = await Promise.all([push(`${prefix}mid`), push(`${prefix}new`)]);
  const b = await bakedThenDue([olds, [v2], [v3]]);
  const removal = await firstRemovalOf(olds);
  const d = await daemon(b);
  await removal.removed;
  removal.stop();
  return { olds, v2, v3, b, d };
}
/** The first cleanup that started after `since` (an ISO time), once it has ended. */
async function cleanupAfter(d: Daemon, since: string): Promise<Record<string, unknown>> {
  return until(async () => {
    const c = (await d.api("GET", "/v1/status")).json["lastCleanup"] as Record<string, unknown> | null;
    return c && String(c["at"]) > since ? c : undefined;
  }, 30_000, `a cleanup after ${since}`);
}
const present = async (img: PushedImage) => (await dockerImage(docker, `${img.reference.split(":").slice(0, -1).join(":")}@${img.digest}`)) !== undefined;
const byId = async (id: string) => {
  try {
    const i = await docker.getImage(id).inspect();
    return { tags: i.RepoTags ?? [], digests: i.RepoDigests ?? [] };
  } catch {
    return undefined;
  }
};
const push = (name: string, tag = "1") => pushRandomImage(quay.push, `acme/${name}-${uid()}`, tag, { layers: 1, bytes: 64 * 1024 });
const entries = (b: Box) => {
  const dir = path.join(b.stateDir, "images");
  return readdirSync(dir).map((f) => JSON.parse(readFileSync(path.join(dir, f), "utf8")) as { ref: string; imageId: string });
};

beforeAll(() => aws.start());
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop("SIGKILL");
  for (const c of containers.splice(0)) await docker.getContainer(c).remove({ force: true }).catch(() => undefined);
  for (const t of handTags.splice(0)) await docker.getImage(t).remove().catch(() => undefined);
});
afterAll(async () => {
  for (const b of boxes) b.cleanup();
  await aws.stop();
});

describe("image cleanup", () => {
  it("after three bakes keeps the current and previous bakes' images, and of the first bake's only what a container uses or a person tagged", async () => {
    const [api1, api2, api3, used, tagged, byHand] = await Promise.all([push("api"), push("api2"), push("api3"), push("job"), push("worker"), push("tool")]);
    // Pulled by hand, never by the agent: cleanup must not know it.
    await new Promise<void>((resolve, reject) =>
      docker.pull(byHand.reference, {}, (err: Error | null, stream?: NodeJS.ReadableStream) => (err ? reject(err) : docker.modem.followProgress(stream!, (e) => (e ? reject(e) : resolve())))),
    );
    handTags.push(byHand.reference);
    const b = box();
    const d = await daemon(b);

    await bake(d, [api1, used, tagged]);
    const c = await docker.createContainer({ Image: used.reference, Cmd: ["/nothing"] });
    containers.push(c.id);
    const taggedId = (await dockerImage(docker, tagged.reference))!.id;
    await docker.getImage(tagged.reference).tag({ repo: `local/keep-${uid()}`, tag: "mine" });
    const mine = (await byId(taggedId))!.tags.find((t) => t.startsWith("local/keep-"))!;
    handTags.push(mine);
    const api1Id = (await dockerImage(docker, api1.reference))!.id;

    await bake(d, [api2]);
    const third = await bake(d, [api3]);
    const last = await cleanupAfter(d, String(third["finishedAt"]));

    expect(await present(api1)).toBe(false);
    expect(await byId(api1Id)).toBeUndefined();
    expect(await present(api2)).toBe(true);
    expect(await present(api3)).toBe(true);
    expect(await present(used)).toBe(true);
    expect(await present(byHand)).toBe(true);
    // The agent's references are gone; the person's tag and the image stay.
    const left = (await byId(taggedId))!;
    expect(left.tags).toEqual([mine]);
    expect(left.digests.filter((r) => r.startsWith("quay.io/"))).toEqual([]);
    expect(last["failures"]).toEqual([]);

    const out = d.output();
    expect(out).toContain(`image cleanup: removed ${api1.reference}`);
    expect(out).toMatch(new RegExp(`image cleanup: kept [^\\n]*${used.reference.replace(/[.]/g, "\\.")}[^\\n]*: a container uses it`));
    expect(out).not.toContain(`image cleanup: removed ${byHand.reference}`);
    expect(out).toContain(`image cleanup: untagged ${tagged.reference}`);
    expect(out).not.toContain(`image cleanup: removed ${tagged.reference}`);
    const metrics = await fetch(`${d.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/slothbox_image_cleanup_images_removed_total [1-9]/);
    expect(metrics).toMatch(/slothbox_image_cleanup_removed_bytes_total [1-9]\d*/);
    expect(metrics).toMatch(/slothbox_image_cleanup_runs_total\{result="ok"\} [1-9]/);
    // What is left on record is what is still the agent's.
    expect(entries(b).map((e) => e.ref).sort()).toEqual([api2, api3, used].map((i) => i.reference).sort());
  });

  it("keeps an image younger than imageCleanupMinAgeSeconds", async () => {
    const [v1, v2, v3] = await Promise.all([push("young"), push("young2"), push("young3")]);
    const d = await daemon(box({ ...FAST, imageCleanupMinAgeSeconds: 3600 }));
    await bake(d, [v1]);
    await bake(d, [v2]);
    const third = await bake(d, [v3]);
    const last = await cleanupAfter(d, String(third["finishedAt"]));
    expect(await present(v1)).toBe(true);
    expect(last).toMatchObject({ removed: [], bytes: 0 });
    expect(d.output()).toMatch(new RegExp(`image cleanup: kept [^\\n]*${v1.reference.replace(/[.]/g, "\\.")}[^\\n]*: pulled \\d+ s ago, under imageCleanupMinAgeSeconds`));
  });

  it("a bake posted while a cleanup runs waits its turn and gets its images, even those the cleanup removes", async () => {
    const { olds, d } = await daemonMidCleanup("old");
    // The cleanup is removing the first bake's images: post a bake that needs them all again.
    const done = await bake(d, olds);
    // Some of them the cleanup had removed: the bake pulled them again.
    expect(olds.some((o) => d.output().includes(`image cleanup: removed ${o.reference}`))).toBe(true);
    // Named by the current bake now: the next cleanups keep them.
    await cleanupAfter(d, String(done["finishedAt"]));
    for (const o of olds) expect(await present(o)).toBe(true);
  });

  it("a daemon killed mid-cleanup leaves the box consistent, and the next one finishes the job", async () => {
    const mid = await daemonMidCleanup("kill");
    const { olds, v2, v3, b } = mid;
    let d = mid.d;
    await d.stop("SIGKILL");
    // Killed after at least one reference was deleted, and (the run is short) maybe before the last.
    const untagged = (await Promise.all(olds.map((o) => dockerImage(docker, o.reference)))).filter((i) => i === undefined).length;
    expect(untagged).toBeGreaterThan(0);

    const since = new Date().toISOString();
    d = await daemon(b);
    const last = await cleanupAfter(d, since);
    expect(last["failures"]).toEqual([]);
    for (const o of olds) expect(await present(o)).toBe(false);
    expect(await present(v2)).toBe(true);
    expect(await present(v3)).toBe(true);
    expect(entries(b).map((e) => e.ref).sort()).toEqual([v2, v3].map((i) => i.reference).sort());
  });

  it("keeps the images a `bake` running beside the daemon needs", async () => {
    const [v1, v2, v3] = await Promise.all([push("cli"), push("cli2"), push("cli3")]);
    const stalled = `acme/cstall-${uid()}`;
    await pushRandomImage(quay.push, stalled, "1", { layers: 1, bytes: 512 * 1024 });
    const b = await bakedThenDue([[v1], [v2], [v3]], { pullInactivityTimeoutSeconds: 60, pullConcurrency: 2 });

    // An operator's bake of v1 and an image from a registry that stalls: it holds v1 while it runs.
    let stopCli: ((s: NodeJS.Signals) => void) | undefined;
    let sawPull = false;
    const cli = b.run(["bake", "--spec", b.write("cli.json", spec([v1.reference, `${stall.host}/${stalled}:1`]))], {
      onOutput: (chunk, kill) => {
        stopCli = kill;
        sawPull ||= chunk.includes(v1.reference);
      },
      timeoutMs: 120_000,
    });
    await until(async () => sawPull || undefined, 30_000, "the CLI bake under way");
    const since = new Date().toISOString();
    const d = await daemon(b);
    await cleanupAfter(d, since);
    expect(await present(v1)).toBe(true);
    expect(d.output()).toMatch(/image cleanup: kept [^\n]*: bake bk_\w+ in progress needs it/);
    await d.stop("SIGTERM");
    stopCli?.("SIGINT");
    expect((await cli).code).toBe(130);
  });
});
