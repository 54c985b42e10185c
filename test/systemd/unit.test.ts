// The systemd unit as systemd itself reads it: `systemd-analyze verify` must be
// clean and `systemd-analyze security` must rate its exposure at most 3.0.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { AGENT, ROOT } from "../e2e/harness.ts";

const UNIT = path.join(ROOT, "systemd/slothbox-agent.service");
const text = readFileSync(UNIT, "utf8");
const PREFLIGHT = path.join(ROOT, "systemd/slothbox-agent-preflight.service");

function exposure(unit: string): number {
  const out = execFileSync("systemd-analyze", ["security", "--offline=true", unit], { encoding: "utf8" });
  const score = Number(new RegExp(`Overall exposure level for ${path.basename(unit).replaceAll(".", "\\.")}: ([\\d.]+)`).exec(out)?.[1]);
  expect(score, out).toBeGreaterThanOrEqual(0);
  return score;
}

describe("systemd/slothbox-agent.service", () => {
  it("verifies clean (with ExecStart pointed at the built agent, as installed)", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-unit-"));
    try {
      const copy = path.join(dir, "slothbox-agent.service");
      writeFileSync(copy, text.replace(/^ExecStart=\/usr\/local\/bin\/slothbox-agent /m, `ExecStart=${AGENT} `));
      const others = ["slothbox-agent.path", "slothbox-agent-preflight.service"].map((u) => {
        writeFileSync(path.join(dir, u), readFileSync(path.join(ROOT, "systemd", u), "utf8"));
        return path.join(dir, u);
      });
      const r = spawnSync("systemd-analyze", ["verify", copy, ...others], { encoding: "utf8" });
      expect(r.stderr + r.stdout).toBe("");
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("has an exposure of at most 2.0 in systemd-analyze security", () => {
    expect(exposure(UNIT)).toBeLessThanOrEqual(2.0);
  });

  it("reads no shared AWS config from its writable home, and drops NODE_DEBUG and NODE_OPTIONS but keeps NODE_EXTRA_CA_CERTS", () => {
    const lines = text.split("\n");
    expect(lines).toContain("Environment=AWS_CONFIG_FILE=/dev/null");
    expect(lines).toContain("Environment=AWS_SHARED_CREDENTIALS_FILE=/dev/null");
    const unset = lines.filter((l) => l.startsWith("UnsetEnvironment=")).flatMap((l) => l.slice("UnsetEnvironment=".length).split(/\s+/));
    expect(unset).toEqual(expect.arrayContaining(["NODE_DEBUG", "NODE_OPTIONS"]));
    expect(unset).not.toContain("NODE_EXTRA_CA_CERTS");
    expect(lines.some((l) => /^(PassEnvironment|Environment)=.*\bNODE_(DEBUG|OPTIONS)\b/.test(l))).toBe(false);
  });

  it("is a notify service after and wanting docker, restarting on failure but not on exit 78", () => {
    for (const line of [
      "Type=notify",
      "After=network-online.target docker.service",
      "Wants=network-online.target docker.service",
      "Restart=on-failure",
      "RestartPreventExitStatus=78",
      "StateDirectory=slothbox",
      "ConfigurationDirectory=slothbox",
      "CacheDirectory=slothbox",
      "Environment=NODE_COMPILE_CACHE=%C/slothbox",
      "StandardOutput=journal",
      "WatchdogSec=60s",
      "LimitCORE=0",
      "ExecStart=/usr/local/bin/slothbox-agent daemon",
    ]) {
      expect(text.split("\n")).toContain(line);
    }
  });
});

describe("systemd/slothbox-agent-preflight.service", () => {
  const preflight = readFileSync(PREFLIGHT, "utf8").split("\n");

  it("has an exposure of at most 3.0 in systemd-analyze security", () => {
    expect(exposure(PREFLIGHT)).toBeLessThanOrEqual(3.0);
  });

  it("still reads the group database as root and logs under the agent's unit", () => {
    expect(preflight.find((l) => l.startsWith("ExecStart="))).toContain("getent group docker");
    // The journal lists a root process's OBJECT_SYSTEMD_UNIT= lines under slothbox-agent.service: no User= or DynamicUser=.
    expect(preflight.some((l) => /^(User|DynamicUser)=/.test(l))).toBe(false);
    expect(preflight).toContain("LogExtraFields=OBJECT_SYSTEMD_UNIT=slothbox-agent.service");
    // The group may come from an NSS service over a local socket; /etc stays readable.
    expect(preflight).toContain("RestrictAddressFamilies=AF_UNIX");
    expect(preflight.some((l) => /^(InaccessiblePaths|TemporaryFileSystem)=.*\/etc\b/.test(l))).toBe(false);
  });
});
