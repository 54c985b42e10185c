// Host-side plumbing of a boot: the per-boot upper layer and the files staged
// into it, the machine's own cgroup directories, and process helpers that
// work from a synchronous `exit` handler.
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { readRootfsFile, type Rootfs } from "./rootfs.ts";

export interface StagedFile {
  /** Absolute path inside the machine. */
  path: string;
  content?: string | Buffer;
  /** A host file copied in instead of `content`. */
  from?: string;
  mode?: number;
}

interface MountLine {
  point: string;
  fstype: string;
  superOptions: string;
}

export function mounts(): MountLine[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const f = l.split(" ");
      const sep = f.indexOf("-");
      return { point: f[4] ?? "", fstype: f[sep + 1] ?? "", superOptions: f[sep + 3] ?? "" };
    });
}

/**
 * The hierarchies nspawn puts its cgroups in: on a hybrid host (this one) the
 * cgroup2 tree at /sys/fs/cgroup/unified (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1) and
 * the named `systemd` v1 tree; on a pure cgroup2 host, /sys/fs/cgroup itself.
 */
export function cgroupHierarchies(): string[] {
  const m = mounts();
  if (m.some((x) => x.point === "/sys/fs/cgroup" && x.fstype === "cgroup2")) return ["/sys/fs/cgroup"];
  return m
    .filter((x) => (x.point === "/sys/fs/cgroup/unified" && x.fstype === "cgroup2") || (x.fstype === "cgroup" && x.superOptions.split(",").includes("name=systemd")))
    .map((x) => x.point);
}

/** rmdir, deepest first: a cgroup directory can only be removed once it has no children. */
export function removeCgroupTree(dir: string): boolean {
  if (!existsSync(dir)) return true;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(path.join(dir, e.name));
  try {
    rmdirSync(dir);
    return true;
  } catch {
    // EBUSY while the kernel still releases the exited processes; the caller retries.
    return false;
  }
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Puts a file into the upper layer before boot. Every directory created on the
 * way copies the mode and owner of the lower tree's directory: in an overlay the
 * upper directory's attributes win, so a plain mkdir of `var/tmp` would turn the
 * machine's /var/tmp from 1777 into 0755.
 */
function stageFile(rootfsDir: string, upper: string, f: StagedFile): void {
  const rel = path.relative("/", path.resolve("/", f.path));
  let sub = "";
  for (const p of rel.split("/").slice(0, -1)) {
    sub = path.join(sub, p);
    const lower = lstatSync(path.join(rootfsDir, sub), { throwIfNoEntry: false });
    if (lower?.isSymbolicLink()) throw new Error(`cannot stage ${f.path}: /${sub} is a symlink in the rootfs; stage under its target`);
    const target = path.join(upper, sub);
    if (existsSync(target)) continue;
    mkdirSync(target);
    chmodSync(target, lower ? lower.mode & 0o7777 : 0o755);
    chownSync(target, lower?.uid ?? 0, lower?.gid ?? 0);
  }
  const dest = path.join(upper, rel);
  if (f.from) copyFileSync(f.from, dest);
  else writeFileSync(dest, f.content ?? "");
  chmodSync(dest, f.mode ?? 0o644);
  // Same group as the tree's own file (e.g. /etc/gshadow is root:shadow), else root.
  chownSync(dest, 0, lstatSync(path.join(rootfsDir, rel), { throwIfNoEntry: false })?.gid ?? 0);
}

export interface PrepareOptions {
  rootfs: Rootfs;
  stage: StagedFile[];
  /** false: drop the `docker` group from /etc/group and /etc/gshadow. */
  dockerGroup: boolean;
  /** true: `systemd` after `files` in nsswitch.conf (libnss-systemd resolves dynamic users). */
  nssSystemd: boolean;
}

/** Creates upper/, work/ and root/ under `runDir`, stages the files, and makes the machine's cgroups. */
export function prepareBoot(runDir: string, cgroups: string[], o: PrepareOptions): void {
  const upper = path.join(runDir, "upper");
  for (const d of ["upper", "work", "root"]) mkdirSync(path.join(runDir, d), { recursive: true });
  chmodSync(upper, lstatSync(o.rootfs.dir).mode & 0o7777);
  const staged: StagedFile[] = [...o.stage];
  if (!o.dockerGroup) {
    const drop = (text: string) => text.split("\n").filter((l) => !l.startsWith("docker:")).join("\n");
    staged.push({ path: "/etc/group", content: drop(readRootfsFile(o.rootfs, "etc/group")) });
    staged.push({ path: "/etc/gshadow", content: drop(readRootfsFile(o.rootfs, "etc/gshadow")), mode: 0o640 });
  }
  if (o.nssSystemd) {
    const text = readRootfsFile(o.rootfs, "etc/nsswitch.conf").replace(/^((?:passwd|group|shadow|gshadow):\s+files)/gm, "$1 systemd");
    staged.push({ path: "/etc/nsswitch.conf", content: text });
  }
  for (const f of staged) stageFile(o.rootfs.dir, upper, f);
  for (const c of cgroups) mkdirSync(c, { recursive: true });
}
