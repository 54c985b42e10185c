// The Debian 12 root file system the nspawn harness boots: built once with
// mmdebstrap and cached under /var/cache/slothbox-dev/rootfs/<hash of the build
// inputs>/, so a changed package list or docker GID builds a new tree and an
// unchanged one costs nothing. Boots never write to it (nspawn.ts mounts an
// overlay over it per boot).
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

export const ROOTFS_CACHE = "/var/cache/slothbox-dev/rootfs";

/**
 * Minbase plus what a box's systemd needs (systemd, dbus: systemctl talks to PID 1
 * over its private socket, logind needs dbus), procps (/bin/kill for ExecReload=),
 * curl (to probe the API from inside) and libnss-systemd, installed but switched
 * off in nsswitch.conf so a boot can choose either (BootOptions.nssSystemd).
 */
export const ROOTFS_PACKAGES = ["systemd", "systemd-sysv", "dbus", "procps", "curl", "libnss-systemd"] as const;

/** Bumped whenever the hooks below change meaning, so old trees are not reused. */
const RECIPE_VERSION = 1;

/** A cold build took ~20 s here; mirrors can be slow, so allow much more before giving up. */
const BUILD_TIMEOUT_MS = 10 * 60_000;

export interface Rootfs {
  /** The cached tree (read-only for boots). */
  dir: string;
  hash: string;
  dockerGid: number;
  /** true when this call built it; false when the cache had it. */
  built: boolean;
  ms: number;
}

export interface RootfsOptions {
  /**
   * GID of the group that owns the test dockerd's socket (dockerd's `--group`
   * default is `docker`, so it is the machine's docker group). The tree's
   * `docker` group gets the same GID: the agent's DynamicUser reaches the
   * bound socket through `SupplementaryGroups=docker`, exactly as on a box.
   */
  dockerGid: number;
  suite?: string;
  log?: (line: string) => void;
}

/** Runs a command to completion, bounded, keeping its output for the error message. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} did not finish within ${timeoutMs} ms:\n${out.slice(-4000)}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;

/** mmdebstrap and systemd-nspawn from Debian's archive when missing (the only network this machine has). */
export async function ensureHostTools(log: (line: string) => void = console.log): Promise<void> {
  const missing = [
    ...(has("mmdebstrap") ? [] : ["mmdebstrap"]),
    ...(has("systemd-nspawn") ? [] : ["systemd-container"]),
  ];
  if (!missing.length) return;
  log(`nspawn harness: installing ${missing.join(" ")} with apt-get (missing on this machine)`);
  const update = await run("apt-get", ["update", "-qq"], BUILD_TIMEOUT_MS);
  if (update.code !== 0) throw new Error(`apt-get update failed:\n${update.out}`);
  const install = await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], BUILD_TIMEOUT_MS);
  if (install.code !== 0) throw new Error(`apt-get install ${missing.join(" ")} failed:\n${install.out}`);
}

/** The shell hooks, as text: they are build inputs and go into the hash. */
function hooks(dockerGid: number): { essential: string; customize: string } {
  // Before dbus and systemd create their system groups, so they pick other GIDs
  // and the docker group gets exactly the socket's.
  const essential = [
    `if cut -d: -f3 "$1/etc/group" | grep -qx ${dockerGid}; then echo "GID ${dockerGid} (the docker socket's group) is already taken in the rootfs" >&2; exit 1; fi`,
    `echo "docker:x:${dockerGid}:" >> "$1/etc/group"`,
    `if [ -e "$1/etc/gshadow" ]; then echo "docker:!::" >> "$1/etc/gshadow"; fi`,
  ].join("\n");
  // libnss-systemd's postinst adds `systemd` to these databases; take it out so a
  // boot starts from plain minbase behaviour and opts in per boot.
  const customize = `sed -i -E '/^(passwd|group|shadow|gshadow):/ s/[[:space:]]+systemd\\b//' "$1/etc/nsswitch.conf"`;
  return { essential, customize };
}

export function rootfsHash(opts: RootfsOptions): string {
  const inputs = { RECIPE_VERSION, suite: opts.suite ?? "bookworm", variant: "minbase", packages: ROOTFS_PACKAGES, hooks: hooks(opts.dockerGid) };
  return createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 16);
}

/** The cached tree for these inputs, building it first if the cache lacks it. */
export async function ensureRootfs(opts: RootfsOptions): Promise<Rootfs> {
  const log = opts.log ?? console.log;
  const started = Date.now();
  if (!Number.isInteger(opts.dockerGid) || opts.dockerGid <= 0) {
    throw new Error(`the docker socket's group is GID ${opts.dockerGid}: without a docker group on this machine (docker.io creates it) a DynamicUser cannot reach the socket`);
  }
  await ensureHostTools(log);
  const hash = rootfsHash(opts);
  const dir = path.join(ROOTFS_CACHE, hash);
  if (existsSync(path.join(dir, "etc/os-release"))) return { dir, hash, dockerGid: opts.dockerGid, built: false, ms: Date.now() - started };

  mkdirSync(ROOTFS_CACHE, { recursive: true });
  // Built beside its final name and renamed in one step: a concurrent or killed
  // build never leaves a half tree under the hash.
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
  const h = hooks(opts.dockerGid);
  log(`nspawn harness: building the ${opts.suite ?? "bookworm"} rootfs ${hash} with mmdebstrap (once; cached in ${ROOTFS_CACHE})`);
  try {
    const r = await run(
      "mmdebstrap",
      [
        "--variant=minbase",
        `--include=${ROOTFS_PACKAGES.join(",")}`,
        `--essential-hook=${h.essential}`,
        `--customize-hook=${h.customize}`,
        opts.suite ?? "bookworm",
        tmp,
      ],
      BUILD_TIMEOUT_MS,
    );
    if (r.code !== 0) throw new Error(`mmdebstrap failed (exit ${r.code}); its output:\n${r.out.slice(-4000)}`);
    writeFileSync(`${dir}.json`, JSON.stringify({ hash, dockerGid: opts.dockerGid, packages: ROOTFS_PACKAGES, builtAt: new Date().toISOString() }, null, 2) + "\n");
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another build of the same inputs finished first: use it.
      if (!existsSync(path.join(dir, "etc/os-release"))) throw err;
    }
    return { dir, hash, dockerGid: opts.dockerGid, built: true, ms: Date.now() - started };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** A file of the cached tree, for boots that stage an edited copy of it (e.g. /etc/group). */
export function readRootfsFile(rootfs: Rootfs, file: string): string {
  return readFileSync(path.join(rootfs.dir, file), "utf8");
}
