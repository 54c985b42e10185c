// Atomic file replacement: write a temp file in the same directory, fsync it,
// rename it over the target, fsync the directory. Readers see old or new, never half.
//
// The state dir is shared: on a live box it belongs to the daemon's dynamic
// user, and an operator may run `slothbox-agent bake` as root beside it. A file
// or directory root makes there is given to the owner of the directory it is
// made in, so that the daemon can read the outbox the CLI leaves (and a file
// the daemon cannot read never appears in its state dir).
//
// That user may also plant symbolic links there: `outbox` → /etc/cron.d would
// lead root's next write out of the state dir. A path is written through a link
// only when root or this process's own user made it (the kernel's
// protected_symlinks rule, applied to every component); state files are never
// read through a link.
import { constants } from "node:fs";
import { randomBytes } from "node:crypto";
import { chown, lstat, mkdir, open, readdir, readlink, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { AgentError } from "../errors/agent-error.ts";

interface Owner {
  uid: number;
  gid: number;
}

const isRoot = () => process.getuid?.() === 0;

/** Links within links within links: past this many, the path is refused (the kernel's own limit is 40). */
const MAX_LINKS = 40;

const LINK_HINT =
  "Something that can write the state dir (the daemon's own user, on a live box) put a symbolic link there, which could send root's writes anywhere. Remove the link, find out who made it, and run again.";

/**
 * Refuses `p` when a component of it, or of a link's target, is a symbolic link
 * that neither root nor this process's user owns. Components that do not exist
 * yet end the walk: what is made below them is made by this process.
 */
async function assertNoForeignLinks(p: string, seen = { links: 0 }): Promise<void> {
  const me = process.getuid?.();
  if (me === undefined) return;
  const parts = path.resolve(p).split(path.sep).filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const at = "/" + parts.slice(0, i).join("/");
    let st;
    try {
      st = await lstat(at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    if (!st.isSymbolicLink()) continue;
    if (st.uid !== 0 && st.uid !== me) {
      throw new AgentError("internal", `refusing to write through ${at}: ${at} is a symbolic link owned by uid ${st.uid}, not by root or this process's user (uid ${me})`, { hint: LINK_HINT });
    }
    if (++seen.links > MAX_LINKS) throw new AgentError("internal", `refusing to write through ${p}: more than ${MAX_LINKS} symbolic links`, { hint: LINK_HINT });
    const target = path.resolve(path.dirname(at), await readlink(at));
    return assertNoForeignLinks(path.join(target, ...parts.slice(i)), seen);
  }
}

/** mkdir -p, each new directory owned like its parent when root makes it. Returns the directory's owner. */
export async function mkdirShared(dir: string): Promise<Owner> {
  await assertNoForeignLinks(dir);
  return mkdirOwned(dir);
}

async function mkdirOwned(dir: string): Promise<Owner> {
  try {
    const st = await stat(dir);
    return { uid: st.uid, gid: st.gid };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const parent = path.dirname(dir);
  const owner = parent === dir ? { uid: 0, gid: 0 } : await mkdirOwned(parent);
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    // Someone else made it meanwhile: perhaps as a link.
    await assertNoForeignLinks(dir);
  }
  if (isRoot() && owner.uid !== 0) await chown(dir, owner.uid, owner.gid);
  const st = await stat(dir);
  return { uid: st.uid, gid: st.gid };
}

/**
 * The state files of a directory, sorted by name: `*.json`, without the dot-named
 * temp files a write in progress (or one a crash cut short) leaves. None when the
 * directory does not exist yet.
 */
export async function listStateFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith(".json") && !f.startsWith(".")).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** A state file parsed by `schema`; undefined when it cannot be read or is not what the schema says. */
export async function readStateFile<T>(file: string, schema: { parse(value: unknown): T }): Promise<T | undefined> {
  try {
    return schema.parse(JSON.parse(await readStateText(file)));
  } catch {
    return undefined;
  }
}

/** A state file's text; a symbolic link in its place fails (ELOOP) rather than being read through. */
export async function readStateText(file: string): Promise<string> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
}

export async function writeFileAtomic(file: string, data: string, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const owner = await mkdirShared(dir);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  // O_EXCL: never through a link someone put at the temp file's name.
  const fh = await open(tmp, "wx", mode);
  try {
    try {
      if (isRoot() && owner.uid !== 0) await fh.chown(owner.uid, owner.gid);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    // A half-written temp file (a full disk) is hidden from listings: left behind, such files would fill the directory.
    await rm(tmp, { force: true });
    throw err;
  }
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
