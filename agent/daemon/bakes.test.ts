import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../clock.ts";
import type { BakeResult, ServiceResult } from "../bake/types.ts";
import type { AgentEvent } from "../report/events.ts";
import type { BakeSpec } from "../spec/schema.ts";
import { delay } from "../../test/unit/fakes.ts";
import { BakeRunner, type Engine } from "./bakes.ts";

const dirs: string[] = [];
const runners: BakeRunner[] = [];
afterEach(async () => {
  // What a test started ends before its state dir goes: a record written later would bring the dir back.
  // Bounded: a test that failed before releasing its engine must not hold the run.
  await Promise.all(runners.splice(0).map((r) => r.stop(2000, "the test ended")));
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

const spec = (bakeId: string): BakeSpec => ({ bakeId, orgId: "o", credentials: [], services: [] });

function runner(engine: Engine, stateDir = mkdtempSync(path.join(os.tmpdir(), "sbx-runner-"))) {
  dirs.push(stateDir);
  const reported: AgentEvent[] = [];
  const errors: unknown[] = [];
  const started: string[] = [];
  const r = new BakeRunner({
    stateDir,
    engine,
    clock: systemClock,
    onError: (e) => errors.push(e),
    report: async (e) => void reported.push(e),
    onStart: (s) => started.push(s.bakeId),
  });
  runners.push(r);
  return { r, reported, errors, stateDir, started };
}

/** Polls until `fn` holds: the runner persists records (fsync) before it runs the engine. */
async function until(fn: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await delay(2);
  }
}

const result = (bakeId: string, services: ServiceResult[] = []): BakeResult => ({ bakeId, status: "succeeded", services, startedAt: new Date().toISOString(), durationMs: 1 });

describe("BakeRunner", () => {
  it("runs one bake at a time, answers busy with the running id, and a known id with its record", async () => {
    const releases: (() => void)[] = [];
    const { r } = runner(async (s) => {
      await new Promise<void>((res) => releases.push(res));
      return result(s.bakeId);
    });
    expect(r.submit(spec("bk_1")).kind).toBe("started");
    await until(() => releases.length === 1);
    expect(r.submit(spec("bk_2"))).toEqual({ kind: "busy", running: "bk_1" });
    expect(r.submit(spec("bk_1"))).toMatchObject({ kind: "known", record: { bakeId: "bk_1", status: "running" } });
    releases[0]!();
    await until(() => r.get("bk_1")?.status === "succeeded");
    expect(r.submit(spec("bk_2")).kind).toBe("started");
    await until(() => releases.length === 2);
    releases[1]!();
  });

  it("hears of a bake it starts before the bake runs, and of none it refuses (busy or known): refused specs register no secret usernames", async () => {
    const releases: (() => void)[] = [];
    let startedWhenRun: string[] = [];
    const { r, started } = runner(async (s) => {
      startedWhenRun = [...started];
      await new Promise<void>((res) => releases.push(res));
      return result(s.bakeId);
    });
    expect(r.submit(spec("bk_1")).kind).toBe("started");
    await until(() => releases.length === 1);
    expect(startedWhenRun).toEqual(["bk_1"]);
    for (let i = 0; i < 5; i++) {
      expect(r.submit(spec(`bk_refused_${i}`)).kind).toBe("busy");
      expect(r.submit(spec("bk_1")).kind).toBe("known");
    }
    expect(started).toEqual(["bk_1"]);
    releases[0]!();
    await until(() => r.get("bk_1")?.status === "succeeded");
  });

  it("shows each service's result in the record while the bake runs", async () => {
    let release: (() => void) | undefined;
    const { r } = runner(async (s, _signal, onService) => {
      onService({ name: "quick", image: "q:1", status: "pulled", durationMs: 1 });
      await new Promise<void>((res) => (release = res));
      return result(s.bakeId, [{ name: "quick", image: "q:1", status: "pulled", durationMs: 1 }]);
    });
    r.submit(spec("bk_live"));
    await until(() => release !== undefined);
    expect(r.get("bk_live")).toMatchObject({ status: "running", services: [{ name: "quick", status: "pulled" }] });
    release!();
  });

  it("turns a bake a crash left running into failed (interrupted), reported once with a fixed event id", async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), "sbx-runner-"));
    mkdirSync(path.join(stateDir, "bakes"));
    writeFileSync(path.join(stateDir, "bakes", "bk_dead.json"), JSON.stringify({ bakeId: "bk_dead", status: "running", startedAt: new Date().toISOString(), services: [] }));
    const first = runner(async (s) => result(s.bakeId), stateDir);
    await first.r.recover();
    expect(first.r.get("bk_dead")).toMatchObject({ status: "failed", error: { code: "interrupted", retryable: true } });
    expect(first.reported).toEqual([expect.objectContaining({ id: "evt_interrupted_bk_dead", type: "bake.failed", bakeId: "bk_dead", error: expect.objectContaining({ code: "interrupted" }) })]);
    expect(JSON.parse(readFileSync(path.join(stateDir, "bakes", "bk_dead.json"), "utf8")).status).toBe("failed");
    const second = runner(async (s) => result(s.bakeId), stateDir);
    await second.r.recover();
    expect(second.reported).toEqual([]);
  });

  it("records an engine that throws as an internal failure without dying", async () => {
    const { r, errors } = runner(async () => {
      throw new Error("boom");
    });
    r.submit(spec("bk_boom"));
    await until(() => r.get("bk_boom")?.status === "failed");
    expect(r.get("bk_boom")).toMatchObject({ status: "failed", error: { code: "internal", message: "boom" } });
    expect(errors).toEqual([]);
  });

  it("fails a bake whose record cannot be written, and takes the next one", async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), "sbx-runner-"));
    const { r } = runner(async (sp) => result(sp.bakeId), stateDir);
    // Where the records go is a file: every write fails, as on a full or broken disk.
    writeFileSync(path.join(stateDir, "bakes"), "");
    expect(r.submit(spec("bk_nowrite")).kind).toBe("started");
    await until(() => r.get("bk_nowrite")?.status === "failed");
    expect(r.get("bk_nowrite")).toMatchObject({ status: "failed", error: { code: "internal" } });
    expect(r.running).toBeUndefined();
    expect(r.submit(spec("bk_next")).kind).toBe("started");
  });

  it("on stop, aborts what runs and starts what is queued already aborted", async () => {
    const { r } = runner(async (sp, signal) => {
      await new Promise((_, reject) => (signal.aborted ? reject(signal.reason) : signal.addEventListener("abort", () => reject(signal.reason), { once: true })));
      return result(sp.bakeId);
    });
    r.submit(spec("bk_running"));
    await until(() => r.running === "bk_running");
    let queuedSignal: AbortSignal | undefined;
    const queued = r.exclusive(async (signal) => void (queuedSignal = signal));
    await r.stop(2000, "SIGTERM: the agent is stopping");
    await queued;
    expect(queuedSignal?.aborted).toBe(true);
    expect(String((queuedSignal?.reason as Error).message)).toMatch(/SIGTERM/);
    await until(() => r.get("bk_running")?.status === "failed");
  });
});
