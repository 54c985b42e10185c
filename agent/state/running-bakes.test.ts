import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { markRunning, runningBakes } from "./running-bakes.ts";

describe("running bakes", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const stateDir = async () => {
    const d = await mkdtemp(path.join(tmpdir(), "slothbox-running-"));
    dirs.push(d);
    return d;
  };

  it("counts a bake from its mark until it ends", async () => {
    const dir = await stateDir();
    const done = await markRunning(dir, "bk_1", ["ghcr.io/acme/api:1"]);
    expect(await runningBakes(dir)).toEqual([expect.objectContaining({ bakeId: "bk_1", pid: process.pid, images: ["ghcr.io/acme/api:1"] })]);
    await done();
    expect(await runningBakes(dir)).toEqual([]);
  });

  it("forgets the mark of a process that is gone, and of one whose PID another process took", async () => {
    const dir = await stateDir();
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const pid = child.pid!;
    await new Promise((r) => child.once("exit", r));
    await mkdir(path.join(dir, "running"));
    await writeFile(path.join(dir, "running", "bk_gone.json"), JSON.stringify({ bakeId: "bk_gone", pid, images: [] }));
    await writeFile(path.join(dir, "running", "bk_reused.json"), JSON.stringify({ bakeId: "bk_reused", pid: process.pid, started: "1", images: [] }));
    expect(await runningBakes(dir)).toEqual([]);
    expect(await readdir(path.join(dir, "running"))).toEqual([]);
  });
});
