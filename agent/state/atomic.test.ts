import { execFileSync } from "node:child_process";
import { chownSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AgentError } from "../errors/agent-error.ts";
import { mkdirShared, readStateFile, writeFileAtomic } from "./atomic.ts";

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

describe("a symbolic link planted in the state dir", () => {
  const DAEMON = 61_234;
  /** A state dir the daemon's user owns, and a directory root's write must never reach. */
  function dirsForRoot() {
    const stateDir = mkdtempSync(path.join(os.tmpdir(), "sbx-link-"));
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), "sbx-elsewhere-"));
    dirs.push(stateDir, elsewhere);
    chownSync(stateDir, DAEMON, DAEMON);
    return { stateDir, elsewhere };
  }

  it.skipIf(process.getuid?.() !== 0)("by the daemon's user does not lead a root write elsewhere: refused, naming the link", async () => {
    const { stateDir, elsewhere } = dirsForRoot();
    const link = path.join(stateDir, "outbox");
    symlinkSync(elsewhere, link);
    lchownSync(link, DAEMON, DAEMON);
    const err = await writeFileAtomic(path.join(link, "000-evt_x.json"), '{"a":1}').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect(err).toMatchObject({ code: "internal", message: expect.stringContaining(`${link} is a symbolic link owned by uid ${DAEMON}`) });
    expect((err as AgentError).hint).toContain("symbolic link");
    expect(readdirSync(elsewhere)).toEqual([]);
    await expect(mkdirShared(path.join(link, "corrupt"))).rejects.toMatchObject({ code: "internal" });
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it.skipIf(process.getuid?.() !== 0)("deeper in the path, behind a link of root's, is refused too", async () => {
    const { stateDir, elsewhere } = dirsForRoot();
    mkdirSync(path.join(stateDir, "manifests"));
    chownSync(path.join(stateDir, "manifests"), DAEMON, DAEMON);
    const link = path.join(stateDir, "manifests", "sub");
    symlinkSync(elsewhere, link);
    lchownSync(link, DAEMON, DAEMON);
    // systemd's DynamicUser makes /var/lib/slothbox a link (root's) to /var/lib/private/slothbox.
    const viaRoot = `${stateDir}-root-link`;
    symlinkSync(stateDir, viaRoot);
    dirs.push(viaRoot);
    await expect(writeFileAtomic(path.join(viaRoot, "manifests", "sub", "m.json"), "{}")).rejects.toMatchObject({ code: "internal" });
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it.skipIf(process.getuid?.() !== 0)("of root's own is followed, as systemd's DynamicUser link to /var/lib/private is", async () => {
    const { stateDir } = dirsForRoot();
    const viaRoot = `${stateDir}-root-link`;
    symlinkSync(stateDir, viaRoot);
    dirs.push(viaRoot);
    await writeFileAtomic(path.join(viaRoot, "outbox", "000-evt_y.json"), '{"b":2}');
    expect(readFileSync(path.join(stateDir, "outbox", "000-evt_y.json"), "utf8")).toBe('{"b":2}');
  });

  it("in place of a state file is replaced, not written through", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-link-"));
    dirs.push(dir);
    const target = path.join(dir, "target");
    writeFileSync(target, "untouched");
    symlinkSync(target, path.join(dir, "manifest.json"));
    await writeFileAtomic(path.join(dir, "manifest.json"), "new");
    expect(readFileSync(target, "utf8")).toBe("untouched");
    expect(lstatSync(path.join(dir, "manifest.json")).isSymbolicLink()).toBe(false);
  });

  it("in place of a state file is not read through", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-link-"));
    dirs.push(dir);
    writeFileSync(path.join(dir, "elsewhere.json"), '{"a":1}');
    symlinkSync(path.join(dir, "elsewhere.json"), path.join(dir, "planted.json"));
    expect(await readStateFile(path.join(dir, "planted.json"), { parse: (v: unknown) => v })).toBeUndefined();
    expect(await readStateFile(path.join(dir, "elsewhere.json"), { parse: (v: unknown) => v })).toEqual({ a: 1 });
  });
});
