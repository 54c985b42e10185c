// The disk reserve: its arithmetic, its words, and a bake that it stops before
// it pulls and while it pulls — with fakes of Docker and of the disk.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CredentialResolver } from "../credentials/resolve.ts";
import { Scrubber } from "../errors/scrub.ts";
import type { AgentEvent } from "../report/events.ts";
import { validateSpec, type BakeSpec } from "../spec/schema.ts";
import { FakeAws, FakeDocker, fakeClock } from "../../test/unit/fakes.ts";
import { DiskReserve, formatBytes, reserveFor, type DiskSpace } from "./disk-reserve.ts";
import { runBake } from "./run.ts";
import type { BakeStep } from "./types.ts";

const GB = 1e9;
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("reserveFor and formatBytes", () => {
  it("is the larger of the bytes and the percentage of the disk", () => {
    expect(reserveFor(100 * GB, 2 * GB, 5)).toBe(5 * GB);
    expect(reserveFor(20 * GB, 2 * GB, 5)).toBe(2 * GB);
    expect(reserveFor(20 * GB, 0, 0)).toBe(0);
  });

  it("writes sizes as a person reads them", () => {
    expect([formatBytes(2 * GB), formatBytes(48_500_000), formatBytes(1500), formatBytes(12)]).toEqual(["2.0 GB", "48.5 MB", "1.5 kB", "12 B"]);
  });
});

const reserve = (space: () => DiskSpace | Promise<DiskSpace>, bytes = 2 * GB, percent = 5, root = "/var/lib/docker") =>
  new DiskReserve({ dataRoot: async () => root, space: async () => space(), reserveBytes: bytes, reservePercent: percent });

describe("DiskReserve.check", () => {
  const signal = new AbortController().signal;

  it("says how much is free, where, and which reserve applies", async () => {
    expect(await reserve(() => ({ free: 3 * GB, total: 20 * GB })).check(signal)).toEqual({ kind: "ok", free: 3 * GB, reserve: 2 * GB, path: "/var/lib/docker" });
    const short = await reserve(() => ({ free: 4 * GB, total: 100 * GB })).check(signal);
    expect(short.kind).toBe("short");
    if (short.kind !== "short") return;
    expect(short.error.code).toBe("disk_full");
    expect(short.error.message).toBe("4.0 GB free on /var/lib/docker (Docker's data root), reserve 5.0 GB (diskReservePercent 5 % of 100.0 GB): the bake stopped before the disk fills");
    const byBytes = await reserve(() => ({ free: 1 * GB, total: 20 * GB })).check(signal);
    expect(byBytes.kind === "short" && byBytes.error.message).toContain("reserve 2.0 GB (diskReserveBytes 2.0 GB)");
  });

  it("is unknown, not a failure, where the agent cannot see the engine's disk", async () => {
    const hidden = reserve(() => Promise.reject(Object.assign(new Error("ENOENT: no such file or directory"), { code: "ENOENT" })));
    expect(await hidden.check(signal)).toEqual({ kind: "unknown", reason: "cannot see Docker's data root /var/lib/docker from the agent: ENOENT" });
    expect(await reserve(() => ({ free: 0, total: 0 }), 2 * GB, 5, "").check(signal)).toMatchObject({ kind: "unknown" });
  });

  /** A reserve whose GET /info answers each read with the next root, and a read that hangs until `answer()`. */
  function moving(freeAt: Record<string, number>) {
    const reads: { root: string; answered: Promise<void>; answer: () => void }[] = [];
    const disk = new DiskReserve({
      dataRoot: async () => {
        const r = reads[reads.length - 1]!;
        await r.answered;
        return r.root;
      },
      space: async (p) => ({ free: freeAt[p]!, total: 20 * GB }),
      reserveBytes: 2 * GB,
      reservePercent: 0,
    });
    const bake = (root: string, answeredAtOnce = false) => {
      let answer!: () => void;
      const answered = answeredAtOnce ? Promise.resolve() : new Promise<void>((r) => (answer = r));
      reads.push({ root, answered, answer: () => answer() });
      disk.prepare(signal);
      return { answer: () => answer() };
    };
    return { disk, bake };
  }
  const settled = async <T>(p: Promise<T>): Promise<T | "pending"> => Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), 50))]);

  it("lets a later bake start on the data root an earlier read found while GET /info answers, and checks the new read's root after it", async () => {
    const m = moving({ "/var/lib/docker": 5 * GB, "/data/docker": 1 * GB });
    m.bake("/var/lib/docker", true);
    expect(await m.disk.check(signal)).toMatchObject({ kind: "ok", path: "/var/lib/docker" });
    const second = m.bake("/data/docker");
    expect(await settled(m.disk.check(signal))).toMatchObject({ kind: "ok", path: "/var/lib/docker" });
    second.answer();
    await new Promise((r) => setImmediate(r));
    expect(await m.disk.check(signal)).toMatchObject({ kind: "short", error: { message: expect.stringContaining("free on /data/docker") } });
  });

  it("never stops a bake on the earlier root: short there, it waits for the read and checks where Docker now keeps images", async () => {
    const m = moving({ "/var/lib/docker": 1 * GB, "/data/docker": 50 * GB });
    m.bake("/var/lib/docker", true);
    expect((await m.disk.check(signal)).kind).toBe("short");
    const second = m.bake("/data/docker");
    const checked = m.disk.check(signal);
    expect(await settled(checked)).toBe("pending");
    second.answer();
    expect(await checked).toMatchObject({ kind: "ok", path: "/data/docker" });
  });

  it("is short where the read confirms the earlier root", async () => {
    const m = moving({ "/var/lib/docker": 1 * GB });
    m.bake("/var/lib/docker", true);
    await m.disk.check(signal);
    const second = m.bake("/var/lib/docker");
    const checked = m.disk.check(signal);
    second.answer();
    expect(await checked).toMatchObject({ kind: "short", error: { code: "disk_full" } });
  });

  it("never stops a bake on the earlier root when this bake's read fails: it asks again, and where Docker still does not say, the reserve is unknown", async () => {
    const answers: (() => Promise<string>)[] = [async () => "/var/lib/docker"];
    const disk = new DiskReserve({ dataRoot: () => answers.shift()!(), space: async () => ({ free: 1 * GB, total: 20 * GB }), reserveBytes: 2 * GB, reservePercent: 0 });
    disk.prepare(signal);
    expect((await disk.check(signal)).kind).toBe("short");
    const reset = () => Promise.reject(new Error("read unix @->/var/run/docker.sock: read: connection reset by peer"));
    answers.push(reset, reset);
    disk.prepare(signal);
    expect(await disk.check(signal)).toEqual({ kind: "unknown", reason: "Docker did not say where it keeps images (GET /info): read unix @->/var/run/docker.sock: read: connection reset by peer" });
    expect(answers).toEqual([]);
  });

  it("waits for the first read of all: no root to start on", async () => {
    const m = moving({ "/var/lib/docker": 5 * GB });
    const first = m.bake("/var/lib/docker");
    const checked = m.disk.check(signal);
    expect(await settled(checked)).toBe("pending");
    first.answer();
    expect(await checked).toMatchObject({ kind: "ok", path: "/var/lib/docker" });
  });
});

function spec(services: Record<string, unknown>[]): BakeSpec {
  const r = validateSpec({ bakeId: "bk_disk", orgId: "org", registryCredentials: [], services }, { ssmParameterPrefix: "/p/" });
  if (!r.ok) throw new Error(JSON.stringify(r.violations));
  return r.spec;
}

function setup(disk: DiskReserve, makeRoom?: () => Promise<void>) {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "sbx-disk-"));
  dirs.push(stateDir);
  const docker = new FakeDocker();
  const clock = fakeClock();
  const scrubber = new Scrubber();
  const events: AgentEvent[] = [];
  const steps: BakeStep[] = [];
  const config = { stateDir, pullConcurrency: 2, pullRetries: 2, pullTimeoutSeconds: 60, pullInactivityTimeoutSeconds: 30 };
  const resolver = new CredentialResolver({ aws: () => new FakeAws(), scrubber, clock, random: () => 0.5, ssmParameterPrefix: "/p/" });
  const run = (s: BakeSpec) =>
    runBake(s, { config, docker, resolver, clock, random: () => 0.5, scrubber, disk, ...(makeRoom ? { makeRoom: async () => makeRoom() } : {}), emit: async (e) => void events.push(e), onStep: (st) => steps.push(st) }, new AbortController().signal);
  return { docker, events, steps, run, manifestWritten: () => existsSync(path.join(stateDir, "manifest.json")) };
}

/** A daemon's bake on a disk with `free` bytes free, where image cleanup frees up to `afterCleanup`. */
function daemonDisk(free: number, afterCleanup: number) {
  let made = 0;
  const t = setup(
    reserve(() => ({ free, total: 20 * GB })),
    async () => {
      made += 1;
      free = afterCleanup;
    },
  );
  return { t, made: () => made, setFree: (bytes: number) => void (free = bytes) };
}

const TWO = [
  { name: "api", image: "ghcr.io/acme/api:1" },
  { name: "web", image: "ghcr.io/acme/web:1" },
];

describe("a bake and the disk reserve", () => {
  it("short before it starts: pulls nothing, fails with disk_full (the other image not started), writes no manifest", async () => {
    const t = setup(reserve(() => ({ free: 1 * GB, total: 20 * GB })));
    const r = await t.run(spec(TWO));
    expect(r.status).toBe("failed");
    expect(r.services.map((s) => [s.status, s.error?.code])).toEqual([
      ["failed", "disk_full"],
      ["skipped", undefined],
    ]);
    expect(r.error?.message).toMatch(/^1\.0 GB free on \/var\/lib\/docker/);
    expect(t.docker.pulls()).toEqual([]);
    expect(t.manifestWritten()).toBe(false);
  });

  it("short before it starts in the daemon: makes the room image cleanup makes, checks again and pulls", async () => {
    const { t, made } = daemonDisk(1 * GB, 5 * GB);
    const r = await t.run(spec(TWO));
    expect(r.status).toBe("succeeded");
    expect(made()).toBe(1);
    expect(t.docker.pulls().sort()).toEqual(["ghcr.io/acme/api:1", "ghcr.io/acme/web:1"]);
    expect(t.steps.filter((s) => s.kind === "disk").map((s) => (s as { message: string }).message)).toEqual([
      "1.0 GB free on /var/lib/docker (Docker's data root), reserve 2.0 GB (diskReserveBytes 2.0 GB): the bake stopped before the disk fills; removing what image cleanup would remove anyway",
      "disk: 5.0 GB free on /var/lib/docker, reserve 2.0 GB",
    ]);
  });

  it("short while it pulls: the pull stops with disk_full, not retried, and no manifest is written", async () => {
    let free = 10 * GB;
    const t = setup(reserve(() => ({ free, total: 20 * GB })));
    t.docker.plan("ghcr.io/acme/api:1", { kind: "hang" });
    const s = spec([...TWO, { name: "db", image: "ghcr.io/acme/db:1" }]);
    const running = t.run(s);
    // The pulls are under way; then the disk fills past the reserve.
    await new Promise((r) => setTimeout(r, 100));
    free = 1.5 * GB;
    const r = await running;
    expect(r.status).toBe("failed");
    const api = r.services.find((x) => x.name === "api")!;
    expect(api.error).toMatchObject({ code: "disk_full", retryable: false, attempts: 1 });
    expect(api.error?.message).toMatch(/^1\.5 GB free on \/var\/lib\/docker \(Docker's data root\), reserve 2\.0 GB/);
    expect(t.docker.pulls().filter((p) => p === "ghcr.io/acme/api:1")).toHaveLength(1);
    // What had not started when the disk ran short did not fail of it: it was skipped.
    expect(r.services.filter((x) => x.status === "failed").map((x) => x.name)).toEqual(["api"]);
    expect(t.manifestWritten()).toBe(false);
    expect(t.events.map((e) => e.type)).toContain("bake.failed");
  }, 10_000);

  it("never holds a bake that pulls nothing: pinned images Docker has are present on a disk short of the reserve", async () => {
    const t = setup(reserve(() => ({ free: 1 * GB, total: 20 * GB })));
    const pinned = "sha256:" + "a".repeat(64);
    t.docker.has("ghcr.io/acme/api", pinned);
    const r = await t.run(spec([{ name: "api", image: `ghcr.io/acme/api@${pinned}` }]));
    expect(r.status).toBe("succeeded");
    expect(r.services.map((s) => s.status)).toEqual(["present"]);
    expect(t.steps.some((s) => s.kind === "disk")).toBe(false);
  });

  it("short while it pulls, in the daemon: makes the room image cleanup makes and goes on", async () => {
    const { t, made, setFree } = daemonDisk(10 * GB, 6 * GB);
    t.docker.plan("ghcr.io/acme/api:1", { kind: "ok", afterMs: 400 });
    const running = t.run(spec([TWO[0]!]));
    await new Promise((r) => setTimeout(r, 100));
    setFree(1.5 * GB);
    const r = await running;
    expect(made()).toBe(1);
    expect(r.status, JSON.stringify(r.services)).toBe("succeeded");
  }, 10_000);

  it("goes on, and says so, where the agent cannot see Docker's disk", async () => {
    const t = setup(reserve(() => Promise.reject(Object.assign(new Error("EACCES"), { code: "EACCES" }))));
    const r = await t.run(spec(TWO));
    expect(r.status).toBe("succeeded");
    expect(t.steps).toContainEqual({ kind: "disk", message: "disk reserve not checked: cannot see Docker's data root /var/lib/docker from the agent: EACCES" });
  });
});
