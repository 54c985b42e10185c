// Atomic file replacement: write a temp file in the same directory, fsync it,
// rename it over the target, fsync the directory. Readers see old or new, never half.
//
// The state dir is shared: on a live box it belongs to the daemon's dynamic
// user, and an operator may run `slothbox-agent bake` as root beside it. A file
// or directory root makes there is given to the owner of the directory it is
// made in, so that the daemon can read the outbox the CLI leaves (and a file
// the daemon cannot read never appears in its state dir).
import { randomBytes } from "node:crypto";
import { chown, mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";

interface Owner {
  uid: number;
  gid: number;
}

const isRoot = () => process.getuid?.() === 0;

/** mkdir -p, each new directory owned like its parent when root makes it. Returns the directory's owner. */
export async function mkdirShared(dir: string): Promise<Owner> {
  try {
    const st = await stat(dir);
    return { uid: st.uid, gid: st.gid };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const parent = path.dirname(dir);
  const owner = parent === dir ? { uid: 0, gid: 0 } : await mkdirShared(parent);
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
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
    return schema.parse(JSON.parse(await readFile(file, "utf8")));
  } catch {
    return undefined;
  }
}

export async function writeFileAtomic(file: string, data: string, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const owner = await mkdirShared(dir);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
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
