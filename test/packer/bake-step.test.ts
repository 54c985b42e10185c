// packer/scripts/bake-step.sh, the bake step both templates run, with a stand-in
// for the agent that leaves events in the outbox as a bake does when the control
// plane does not answer: the image must not carry them.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../e2e/harness.ts";

const work = mkdtempSync(path.join(os.tmpdir(), "sbx-bakestep-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function setup(exitCode: number) {
  const dir = mkdtempSync(path.join(work, "case-"));
  const stateDir = path.join(dir, "state");
  const agent = path.join(dir, "agent");
  // Leaves two undelivered events, as the real bake does with the control plane down, and says how it was called.
  writeFileSync(
    agent,
    `#!/bin/sh\nmkdir -p "${stateDir}/outbox"\necho '{}' > "${stateDir}/outbox/000001-evt_a.json"\necho '{}' > "${stateDir}/outbox/000002-evt_b.json"\necho "$SLOTHBOX_BOX_ID $*" > "${dir}/called"\nulimit -c > "${dir}/core-limit"\nexit ${exitCode}\n`,
  );
  chmodSync(agent, 0o755);
  const config = path.join(dir, "agent.json");
  writeFileSync(config, JSON.stringify({ stateDir, controlPlaneUrl: "https://cp.example" }));
  const token = path.join(dir, "token");
  writeFileSync(token, "build-token\n");
  const spec = path.join(dir, "spec.json");
  writeFileSync(spec, "{}");
  mkdirSync(stateDir);
  const args = [agent, spec, config];
  const run = (env: Record<string, string>) =>
    spawnSync("sh", [path.join(ROOT, "packer/scripts/bake-step.sh"), ...args], { encoding: "utf8", env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env } });
  return { dir, stateDir, token, args, run, coreLimit: () => readFileSync(path.join(dir, "core-limit"), "utf8").trim() };
}

describe("bake-step.sh", () => {
  it("reports as the build's box and leaves none of the build's undelivered events in the image", () => {
    const c = setup(0);
    const r = c.run({ SLOTHBOX_BAKE_TOKEN_FILE: c.token, SLOTHBOX_BAKE_BOX_ID: "packer-42" });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(path.join(c.dir, "called"), "utf8")).toMatch(/^packer-42 bake --spec /);
    expect(r.stderr).toContain("bake-step: 2 event(s) of this bake were not delivered during the build; removed from the image");
    expect(existsSync(path.join(c.stateDir, "outbox"))).toBe(false);
  });

  it("runs the bake with core dumps off, reporting or not: a dump would hold the secrets it read", () => {
    for (const env of [(c: ReturnType<typeof setup>) => ({ SLOTHBOX_BAKE_TOKEN_FILE: c.token }), () => ({})]) {
      const c = setup(0);
      const r = spawnSync("sh", ["-c", 'ulimit -c unlimited && exec "$@"', "sh", "sh", path.join(ROOT, "packer/scripts/bake-step.sh"), ...c.args], {
        encoding: "utf8",
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env(c) },
      });
      expect(r.status, r.stderr).toBe(0);
      expect(c.coreLimit()).toBe("0");
    }
  });

  it("keeps the bake's exit code when the bake failed", () => {
    const c = setup(1);
    const r = c.run({ SLOTHBOX_BAKE_TOKEN_FILE: c.token });
    expect(r.status).toBe(1);
    expect(existsSync(path.join(c.stateDir, "outbox"))).toBe(false);
  });
});
