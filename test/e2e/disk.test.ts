// The disk reserve (SPEC §4) on a data root that really is small: a dockerd of
// its own on a tmpfs, and the agent in that dockerd's mount namespace, seeing
// the same disk as the engine, as on a box. A bake short of the reserve pulls
// nothing; a pull that takes the disk below it is stopped while the disk still
// has room; neither writes a manifest.
import Docker from "dockerode";
import { execFileSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { startDockerd, type Dockerd } from "../stack/dockerd.ts";
import { pushRandomImage } from "../stack/images.ts";
import { requestCounts, slowBlobs } from "../stack/registry-front.ts";
import { leftovers } from "../stack/stack.ts";
import { bakeDone, startDaemon } from "./daemon-harness.ts";
import { AGENT, dockerImage, newBox, parseJsonResult, uid, type Box } from "./harness.ts";

const stack = inject("stack");
const aws = new AwsStandIn();
const { quay } = stack.registries;
const MB = 1_000_000;
const boxes: Box[] = [];

let d: Dockerd;
const dir = `/tmp/sbx-dr-${uid()}`;

beforeAll(async () => {
  await aws.start();
  const hosts = Object.fromEntries(Object.values(stack.registries).map((r) => [r.host, r.address]));
  d = await startDockerd({ dir, hosts, engine: stack.engine, dataRootSize: "128m" });
}, 120_000);
afterAll(async () => {
  for (const b of boxes) b.cleanup();
  await aws.stop();
  await d?.stop();
  rmSync(dir, { recursive: true, force: true });
  expect(await leftovers({ dir, pids: [d.pid], addresses: [] })).toEqual([]);
});

/** The agent where the engine's disk is: in dockerd's own mount namespace. */
const inDockerdNamespace = () => ["nsenter", "-m", "-t", String(d.pid), process.execPath, AGENT];

/** Bytes free on the engine's data root, as the engine's namespace sees it. */
function freeOnDataRoot(): number {
  const root = path.join(d.dir, "data");
  return Number(execFileSync("nsenter", ["-m", "-t", String(d.pid), "df", "-B1", "--output=avail", root], { encoding: "utf8" }).trim().split("\n").at(-1));
}

function box(reserveBytes: number): Box {
  const b = newBox(stack, aws, { config: { dockerSocket: d.dockerHost, diskReserveBytes: reserveBytes, diskReservePercent: 0, pullRetries: 2 } });
  boxes.push(b);
  return b;
}

const spec = (image: string) => ({ bakeId: `bk_${uid()}`, orgId: "o", registryCredentials: [], services: [{ name: "big", image }] });
const docker = () => new Docker({ socketPath: d.socketPath });

describe("the disk reserve", () => {
  it("a bake that would start below the reserve pulls nothing: disk_full naming what is free, where, and the reserve", async () => {
    const img = await pushRandomImage(quay.push, `acme/reserve-${uid()}`, "1", { layers: 1 });
    const b = box(1000 * MB);
    const before = await requestCounts(quay.control, img.repository);
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec(img.reference)), "--json"], { agent: inDockerdNamespace() });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e.code).toBe("disk_full");
    expect(e.message).toMatch(new RegExp(`^[\\d.]+ MB free on ${path.join(d.dir, "data")} \\(Docker's data root\\), reserve 1\\.0 GB \\(diskReserveBytes 1\\.0 GB\\)`));
    const after = await requestCounts(quay.control, img.repository);
    expect(after.manifestGets + after.manifestHeads).toBe(before.manifestGets + before.manifestHeads);
    expect(existsSync(path.join(b.stateDir, "manifest.json"))).toBe(false);
  });

  it("a pull that takes the disk below the reserve is stopped while the disk still has room, and is not retried", async () => {
    // 2 × 24 MB that do not compress, each blob at 3 MB/s: the disk crosses the reserve mid-pull.
    const img = await pushRandomImage(quay.push, `acme/fill-${uid()}`, "1", { layers: 2, bytes: 24 * MB });
    await slowBlobs(quay.control, img.repository, 3 * MB, 3);
    const reserve = freeOnDataRoot() - 30 * MB;
    const b = box(reserve);
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec(img.reference)), "--json"], { agent: inDockerdNamespace(), timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e, r.stderr).toMatchObject({ code: "disk_full", retryable: false, attempts: 1 });
    expect(e.message).toMatch(/free on .* \(Docker's data root\), reserve [\d.]+ MB \(diskReserveBytes [\d.]+ MB\): the bake stopped before the disk fills$/);
    expect(r.stderr).not.toMatch(/no space left on device/);
    // The box still works: the disk kept room, and no manifest names a half-pulled image.
    expect(freeOnDataRoot()).toBeGreaterThan(20 * MB);
    expect(existsSync(path.join(b.stateDir, "manifest.json"))).toBe(false);
    const present = await docker()
      .getImage(img.reference)
      .inspect()
      .then(() => true)
      .catch(() => false);
    expect(present).toBe(false);
  }, 150_000);

  it("the daemon first removes what image cleanup would remove anyway, checks again, and bakes", async () => {
    const n = uid();
    const [old, kept, next] = await Promise.all([
      pushRandomImage(quay.push, `acme/old-${n}`, "1", { layers: 3, bytes: 8 * MB }),
      pushRandomImage(quay.push, `acme/kept-${n}`, "1", { layers: 1 }),
      pushRandomImage(quay.push, `acme/next-${n}`, "1", { layers: 1 }),
    ]);
    // Two bakes without a reserve: the first image is then only in an earlier bake's manifest.
    const b = box(0);
    for (const img of [old, kept]) {
      const r = await b.run(["bake", "--spec", b.write("spec.json", spec(img.reference))], { agent: inDockerdNamespace() });
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }
    // A reserve the disk misses now, and meets once the first image is gone.
    const reserve = freeOnDataRoot() + 10 * MB;
    const daemon = await startDaemon(b, {
      agent: inDockerdNamespace(),
      env: {
        SLOTHBOX_DISK_RESERVE_BYTES: String(reserve),
        SLOTHBOX_IMAGE_CLEANUP_KEEP_BAKES: "0",
        SLOTHBOX_IMAGE_CLEANUP_MIN_AGE_SECONDS: "0",
        SLOTHBOX_IMAGE_CLEANUP_INTERVAL_SECONDS: "3600",
      },
    });
    try {
      const s = spec(next.reference);
      expect((await daemon.api("POST", "/v1/bakes", s)).status).toBe(202);
      const done = await bakeDone(daemon, s.bakeId, 60_000);
      expect(done, daemon.output()).toMatchObject({ status: "succeeded" });
      expect(await dockerImage(docker(), old.reference)).toBeUndefined();
      expect(await dockerImage(docker(), kept.reference)).toBeDefined();
      expect((await dockerImage(docker(), next.reference))?.digests).toContain(next.digest);
      expect(daemon.output()).toMatch(/removing what image cleanup would remove anyway/);
      expect(daemon.output()).toContain(`image cleanup: removed ${old.reference}`);
    } finally {
      await daemon.stop();
    }
  }, 150_000);
});
