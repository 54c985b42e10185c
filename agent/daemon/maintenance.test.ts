import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../clock.ts";
import { loadConfig } from "../config.ts";
import type { DockerPort } from "../docker/port.ts";
import { Scrubber } from "../errors/scrub.ts";
import { PulledImages } from "../state/pulled.ts";
import { createReconciler } from "./maintenance.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function reconciler() {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "sbx-maint-"));
  dirs.push(stateDir);
  const config = loadConfig({ env: { SLOTHBOX_STATE_DIR: stateDir }, readFile: () => undefined });
  const clock: Clock = { now: () => Date.UTC(2026, 0, 2, 3, 4, 5), sleep: async () => undefined };
  const statuses: string[] = [];
  const r = createReconciler(
    // No manifest, or one that cannot be read: Docker is never asked.
    { config, docker: {} as DockerPort, logger: pino({ level: "silent" }), scrubber: new Scrubber(), clock, pulled: new PulledImages(stateDir) },
    { runner: { exclusive: (fn) => fn(new AbortController().signal) }, run: () => Promise.reject(new Error("no re-pull expected")), status: (t) => statuses.push(t) },
  );
  return { r, stateDir, statuses, listen: config.listen };
}

describe("createReconciler", () => {
  it("remembers how the last reconcile ended, timed by its clock, and tells systemd's status what it does", async () => {
    const { r, statuses, listen } = reconciler();
    expect(r.last()).toBeUndefined();
    await r.run("start");
    expect(r.last()).toEqual({ at: "2026-01-02T03:04:05.000Z", trigger: "start", checked: 0, missing: [], retagged: [], status: "nothing to do" });
    expect(statuses).toEqual(["reconciling (start)", `serving on ${listen}; reconciled (nothing to do)`]);
  });

  it("a reconcile that fails is a failed status with its error, not a thrown one", async () => {
    const { r, stateDir } = reconciler();
    writeFileSync(path.join(stateDir, "manifest.json"), "{not json");
    await r.run("SIGHUP");
    expect(r.last()).toMatchObject({ at: "2026-01-02T03:04:05.000Z", trigger: "SIGHUP", status: "failed", error: { code: "internal", message: expect.stringContaining("in JSON at position 1") } });
  });
});
