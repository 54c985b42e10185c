// A real systemd 252 (Debian 12) for tests: boots the cached rootfs (rootfs.ts)
// in systemd-nspawn and drives it from outside with `nsenter -t <init> -a`.
//
// Per boot: an overlay over the cached tree (writes land in a per-boot upper
// dir, removed afterwards), mounted in a private mount namespace so the mount
// dies with nspawn and the host's mount table never shows it; the host's
// network namespace (the agent reaches the stack's loopback servers as on a
// box it reaches IMDS and the registries); the stack's docker socket bound to
// /var/run/docker.sock; and its own cgroup directories, so the `payload` and
// `supervisor` cgroups nspawn creates (--keep-unit on a host whose PID 1 is not
// systemd) never collide with another boot's and can be removed afterwards.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { AgentPackage } from "./agent-package.ts";
import { inside, type ExecResult, type Inside } from "./inside.ts";
import { alive, cgroupHierarchies, mounts, prepareBoot, removeCgroupTree, sleepSync, type StagedFile } from "./nspawn-host.ts";
import type { Rootfs } from "./rootfs.ts";

export { ensureRootfs, ROOTFS_CACHE, type Rootfs } from "./rootfs.ts";
export { packageAgent, type AgentPackage } from "./agent-package.ts";
export type { ExecOptions, ExecResult, UnitState } from "./inside.ts";
export type { StagedFile } from "./nspawn-host.ts";

/** Per-boot directories (upper layer, overlay work dir, mount point). */
const RUN_ROOT = "/var/tmp/slothbox-nspawn";
/** Where a staged agent package lands inside (Packer uploads to /tmp; a tmpfs can never hide /root). */
export const PKG_DIR = "/root/slothbox-pkg";
/** systemd 252 reaches `running` in 0.2-1.1 s here; a loaded 2-core machine can take far longer. */
const BOOT_TIMEOUT_MS = 60_000;
/** A clean poweroff took 0.2-0.5 s here; past this the container is killed. */
const POWEROFF_TIMEOUT_MS = 30_000;
/** Console output kept in memory for diagnostics (a boot prints ~5 KB). */
const CONSOLE_LIMIT = 1 << 20;

export interface BootOptions {
  rootfs: Rootfs;
  /** The stack's docker socket, bound to /var/run/docker.sock inside. */
  dockerSocket?: string;
  /** Host directories bound read-only at the same path inside (the engine's data root, which a box's agent sees). */
  bindReadOnly?: string[];
  /** Staged under PKG_DIR (tarball, .sha256, install.sh) for installAgent(). */
  agentPackage?: AgentPackage;
  /** Files put in place before systemd starts. */
  stage?: StagedFile[];
  /** false: the machine has no `docker` group (a box without docker.io's group). Default true. */
  dockerGroup?: boolean;
  /** true: `systemd` in nsswitch.conf (libnss-systemd resolves dynamic users). Default false, as minbase. */
  nssSystemd?: boolean;
  bootTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface PoweroffResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  /** true when the container had to be killed. */
  forced: boolean;
}

export interface Machine extends Inside {
  readonly name: string;
  /** The container's init (systemd) as the host sees it. */
  readonly initPid: number;
  /** From spawning nspawn to `systemctl is-system-running` answering running/degraded. */
  readonly bootMs: number;
  /** What `is-system-running --wait` answered. */
  readonly systemState: string;
  /** install.sh TARBALL --sha256 FILE --config FILE inside, as the Packer template runs it. */
  installAgent(config: Record<string, unknown>): Promise<ExecResult>;
  /** `systemctl poweroff`, then the container killed if it has not exited in time. */
  poweroff(timeoutMs?: number): Promise<PoweroffResult>;
  /** Always safe: powers off if still running, removes the per-boot copy and the cgroups. */
  cleanup(): Promise<void>;
  /** The container's console (boot messages). */
  console(): string;
}

/** Harness errors carry the console: a failed boot is otherwise unexplained. */
function bootError(message: string, consoleText: string): Error {
  return new Error(`${message}\n--- console (last 4 KB) ---\n${consoleText.slice(-4096)}`);
}

export function skipReason(): string | undefined {
  if (process.platform !== "linux") return "systemd-nspawn needs Linux";
  if (process.arch !== "x64") return "the box under systemd is tested with the linux-x64 package only (test/systemd/agent-package.ts)";
  if (process.getuid?.() !== 0) return "booting systemd in systemd-nspawn needs root (mounts, namespaces, cgroups)";
  return undefined;
}

/** Machines not yet cleaned up, killed synchronously if the test process exits first. */
const live = new Set<{ killSync(): void }>();
let exitHookInstalled = false;
function trackForExit(m: { killSync(): void }): void {
  live.add(m);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const x of live) x.killSync();
  });
}

/** Boots a machine; every failure after spawning cleans up before it throws. */
export async function boot(opts: BootOptions): Promise<Machine> {
  const log = opts.log ?? (() => undefined);
  const name = `sbx-${randomBytes(4).toString("hex")}`;
  const runDir = path.join(RUN_ROOT, name);
  const root = path.join(runDir, "root");
  const cgroups = cgroupHierarchies().map((h) => path.join(h, `slothbox-nspawn-${name}`));
  const stage: StagedFile[] = [...(opts.stage ?? [])];
  if (opts.agentPackage) {
    const p = opts.agentPackage;
    stage.push({ path: `${PKG_DIR}/${path.basename(p.tarball)}`, from: p.tarball });
    stage.push({ path: `${PKG_DIR}/${path.basename(p.sha256File)}`, from: p.sha256File });
    stage.push({ path: `${PKG_DIR}/install.sh`, from: p.installScript, mode: 0o755 });
  }
  try {
    prepareBoot(runDir, cgroups, { rootfs: opts.rootfs, stage, dockerGroup: opts.dockerGroup ?? true, nssSystemd: opts.nssSystemd ?? false });
  } catch (err) {
    rmSync(runDir, { recursive: true, force: true });
    for (const c of cgroups) removeCgroupTree(c);
    throw err;
  }

  const nspawnArgs = [
    "-q",
    "-D", root,
    "-M", name,
    "-b",
    "--register=no",
    "--keep-unit",
    "--console=read-only",
    // `bpf` is a system call name: nspawn's default filter refuses bpf(2), and
    // systemd needs it for DevicePolicy= and IPAddressDeny= (the unit uses the former).
    "--system-call-filter=bpf",
    ...(opts.dockerSocket ? [`--bind=${opts.dockerSocket}:/var/run/docker.sock`] : []),
    ...(opts.bindReadOnly ?? []).map((p) => `--bind-ro=${p}`),
  ];
  // Runs as the process that becomes nspawn: joins its own cgroups first (nspawn
  // --keep-unit creates payload/ and supervisor/ below the cgroup it starts in),
  // then mounts the overlay in the private mount namespace unshare made.
  const script = [
    'for cg in $SBX_CGROUPS; do echo $$ > "$cg/cgroup.procs" || exit 1; done',
    'mount -t overlay overlay -o "lowerdir=$SBX_LOWER,upperdir=$SBX_UPPER,workdir=$SBX_WORK" "$SBX_ROOT" || exit 1',
    'exec systemd-nspawn "$@"',
  ].join("\n");
  const started = Date.now();
  const child: ChildProcess = spawn("unshare", ["--mount", "--propagation", "private", "sh", "-c", script, "sh", ...nspawnArgs], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      TERM: "dumb",
      SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1",
      SBX_CGROUPS: cgroups.join(" "),
      SBX_LOWER: opts.rootfs.dir,
      SBX_UPPER: path.join(runDir, "upper"),
      SBX_WORK: path.join(runDir, "work"),
      SBX_ROOT: root,
    },
  });
  const nspawnPid = child.pid ?? -1;
  let consoleText = "";
  const onOutput = (c: Buffer) => {
    consoleText += c.toString();
    if (consoleText.length > CONSOLE_LIMIT) consoleText = consoleText.slice(-CONSOLE_LIMIT / 2);
  };
  child.stdout!.on("data", onOutput);
  child.stderr!.on("data", onOutput);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  let initPid = -1;

  const killSync = () => {
    if (initPid > 0 && alive(initPid)) process.kill(initPid, "SIGKILL");
    if (alive(nspawnPid)) process.kill(nspawnPid, "SIGKILL");
    for (let i = 0; i < 50 && alive(nspawnPid); i++) sleepSync(100);
    rmSync(runDir, { recursive: true, force: true });
    for (const c of cgroups) for (let i = 0; i < 20 && !removeCgroupTree(c); i++) sleepSync(100);
  };
  const tracked = { killSync };
  trackForExit(tracked);

  const ops: Inside = inside(name, () => initPid);
  const { exec, waitFor } = ops;

  let cleaned = false;
  const poweroff = async (timeoutMs = POWEROFF_TIMEOUT_MS): Promise<PoweroffResult> => {
    const t0 = Date.now();
    if (exit) return { ...exit, ms: 0, forced: false };
    if (initPid > 0) {
      // PID 1 may take the nsenter'd systemctl down with it while shutting down: its result does not matter.
      await exec(["systemctl", "poweroff", "--no-block"], { timeoutMs: 5_000 }).catch(() => undefined);
    }
    let forced = false;
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<"hung">((r) => (timer = setTimeout(() => r("hung"), timeoutMs)));
    if ((await Promise.race([exited, hung])) === "hung") {
      forced = true;
      log(`${name}: no clean poweroff within ${timeoutMs} ms; killing the container`);
      // SIGKILL to a PID namespace's init ends every process in it; nspawn then exits.
      if (initPid > 0 && alive(initPid)) process.kill(initPid, "SIGKILL");
      const grace = new Promise<"hung">((r) => setTimeout(() => r("hung"), 5_000));
      if ((await Promise.race([exited, grace])) === "hung" && alive(nspawnPid)) process.kill(nspawnPid, "SIGKILL");
    }
    clearTimeout(timer);
    const r = await exited;
    return { ...r, ms: Date.now() - t0, forced };
  };

  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    if (!exit) await poweroff();
    // The overlay lived in nspawn's private mount namespace, gone with it; the
    // host never had a mount here, so this removes only the upper layer's files.
    if (mounts().some((m) => m.point.startsWith(runDir))) throw new Error(`${runDir} still has mounts; not removing it`);
    rmSync(runDir, { recursive: true, force: true });
    const deadline = Date.now() + 5_000;
    for (const c of cgroups) {
      while (!removeCgroupTree(c)) {
        if (Date.now() > deadline) throw new Error(`cgroup ${c} could not be removed: ${readdirSync(c).join(" ")}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    live.delete(tracked);
  };

  try {
    // The container's init is nspawn's child (in the new PID namespace it is PID 1).
    initPid = await waitFor(
      () => {
        if (exit) throw bootError(`${name}: nspawn exited (${exit.code ?? exit.signal}) during boot`, consoleText);
        const kids = readFileSync(`/proc/${nspawnPid}/task/${nspawnPid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
        const init = kids.find((k) => {
          try {
            return readFileSync(`/proc/${k}/comm`, "utf8").trim() === "systemd";
          } catch {
            return false;
          }
        });
        return init;
      },
      opts.bootTimeoutMs ?? BOOT_TIMEOUT_MS,
      "the container's systemd to start",
    ).catch((err: unknown) => {
      throw err instanceof Error && err.message.includes("console") ? err : bootError(String(err), consoleText);
    });
    const deadline = started + (opts.bootTimeoutMs ?? BOOT_TIMEOUT_MS);
    let systemState = "";
    for (;;) {
      // Fails (no bus yet) until PID 1 has set up its private socket; then waits for the boot to finish.
      const r = await exec(["systemctl", "is-system-running", "--wait"], { timeoutMs: Math.max(1_000, deadline - Date.now()) });
      systemState = r.stdout.trim();
      if (systemState === "running" || systemState === "degraded") break;
      if (exit) throw bootError(`${name}: nspawn exited (${exit.code ?? exit.signal}) during boot`, consoleText);
      if (Date.now() > deadline) throw bootError(`${name}: systemd did not finish booting within ${opts.bootTimeoutMs ?? BOOT_TIMEOUT_MS} ms (state: ${systemState || r.stderr.trim()})`, consoleText);
      await new Promise((r2) => setTimeout(r2, 100));
    }
    const bootMs = Date.now() - started;
    if (systemState === "degraded") log(`${name}: booted degraded:\n${(await exec(["systemctl", "--failed", "--no-legend"])).stdout}`);

    const machine: Machine = {
      name,
      initPid,
      bootMs,
      systemState,
      ...ops,
      async installAgent(config) {
        const p = opts.agentPackage;
        if (!p) throw new Error("installAgent needs BootOptions.agentPackage");
        await machine.writeFile(`${PKG_DIR}/agent.json`, JSON.stringify(config, null, 2) + "\n", 0o600);
        return exec(
          [
            "sh", `${PKG_DIR}/install.sh`, `${PKG_DIR}/${path.basename(p.tarball)}`,
            "--sha256", `${PKG_DIR}/${path.basename(p.sha256File)}`,
            "--config", `${PKG_DIR}/agent.json`,
          ],
          { timeoutMs: 120_000 },
        );
      },
      poweroff,
      cleanup,
      console: () => consoleText,
    };
    return machine;
  } catch (err) {
    await cleanup().catch(() => killSync());
    throw err;
  }
}
