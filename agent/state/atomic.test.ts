import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, chownSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { writeFileAtomic } from "./atomic.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("writeFileAtomic in a state dir another user owns", () => {
  it.skipIf(process.getuid?.() !== 0)("gives what root writes (new directories too) to the directory's owner, so the daemon's user can read it", async () => {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), "sbx-atomic-"));
    dirs.push(stateDir);
    // The daemon's dynamic user owns its state dir; root runs `bake` beside it.
    chownSync(stateDir, 61_234, 61_234);
    const file = path.join(stateDir, "outbox", "000-evt_x.json");
    await writeFileAtomic(file, '{"a":1}');
    expect(readFileSync(file, "utf8")).toBe('{"a":1}');
    for (const p of [path.dirname(file), file]) expect(statSync(p)).toMatchObject({ uid: 61_234, gid: 61_234 });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it("replaces a file whole and leaves no temp file behind", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-atomic-"));
    dirs.push(dir);
    const file = path.join(dir, "manifest.json");
    await writeFileAtomic(file, "old");
    await writeFileAtomic(file, "new", 0o644);
    expect(readFileSync(file, "utf8")).toBe("new");
    expect(statSync(dir).uid).toBe(process.getuid?.());
  });
});

describe("writeFileAtomic on a full disk", () => {
  it.skipIf(process.getuid?.() !== 0)("fails with ENOSPC and leaves no half-written temp file behind", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", dir]);
    try {
      await expect(writeFileAtomic(path.join(dir, "manifest.json"), "x".repeat(64 * 1024))).rejects.toMatchObject({ code: "ENOSPC" });
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      execFileSync("umount", [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
