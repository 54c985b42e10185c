// The hermetic test stack: its own dockerd, real registries under real host
// names on loopback, and the fault proxies. The AWS stand-in and the control
// plane are cheap in-process servers that each test starts for itself
// (aws/stand-in.ts, control-plane.ts), so tests never share their faults.
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { startDockerd, type Dockerd } from "./dockerd.ts";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.ts";
import { buildRegistryImage, startRegistry, type Registry } from "./registry.ts";

export interface RegistryInfo {
  /** The registry's name as images and credentials write it. */
  host: string;
  /** Loopback address it serves on (port 80). */
  address: string;
  url: string;
  user?: string;
  password?: string;
}

export interface StackInfo {
  dir: string;
  dockerHost: string;
  socketPath: string;
  dockerdPid: number;
  /** Extra ghcr.io users whose passwords hold awkward characters, one per base64 padding length. */
  awkwardUsers: { user: string; password: string }[];
  registries: {
    ghcr: RegistryInfo;
    ecr: RegistryInfo;
    quay: RegistryInfo;
    stall: RegistryInfo;
    flaky: RegistryInfo;
  };
}

export const ECR_ACCOUNT = "123456789012";
export const ECR_HOST = `${ECR_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com`;

const ADDRESSES = {
  ghcr: { host: "ghcr.io", address: "127.0.0.2" },
  ecr: { host: ECR_HOST, address: "127.0.0.3" },
  quay: { host: "quay.io", address: "127.0.0.4" },
  stall: { host: "stall.registry.test", address: "127.0.0.5" },
  flaky: { host: "flaky.registry.test", address: "127.0.0.6" },
} as const;

export interface Stack {
  info: StackInfo;
  stop(): Promise<void>;
}

function secret(): string {
  return "sbx-" + randomBytes(18).toString("base64url");
}

/** Environment testcontainers needs with a bridge-less daemon and no Ryuk image. */
export function testcontainersEnv(dockerHost: string): void {
  process.env["DOCKER_HOST"] = dockerHost;
  process.env["TESTCONTAINERS_RYUK_DISABLED"] = "true";
  process.env["TESTCONTAINERS_HOST_OVERRIDE"] = "127.0.0.1";
}

export async function startStack(opts: { dir?: string } = {}): Promise<Stack> {
  const dir = opts.dir ?? `/tmp/sbx-${randomBytes(3).toString("hex")}`;
  const hosts = Object.fromEntries(Object.values(ADDRESSES).map((a) => [a.host, a.address]));
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const dockerd: Dockerd = await startDockerd({ dir, hosts });
    cleanups.push(() => dockerd.stop());
    testcontainersEnv(dockerd.dockerHost);
    await buildRegistryImage(dir);
    const ghcrUser = { user: "acme-bot", password: secret() };
    // X-Registry-Auth must be padded base64url: these users make the JSON need 0, 1 and 2 '=' signs.
    const awkwardUsers = ["", "x", "xy"].map((pad, i) => ({
      user: `acme+robot${i}`,
      password: `${secret()}"\\/+?~>${pad}`,
    }));
    const ecrUser = { user: "AWS", password: secret() };
    const started: Registry[] = await Promise.all([
      startRegistry({ name: "ghcr.io", address: ADDRESSES.ghcr.address, users: Object.fromEntries([[ghcrUser.user, ghcrUser.password], ...awkwardUsers.map((u) => [u.user, u.password])]) }),
      startRegistry({ name: ECR_HOST, address: ADDRESSES.ecr.address, users: { [ecrUser.user]: ecrUser.password } }),
      startRegistry({ name: "quay.io", address: ADDRESSES.quay.address }),
    ]);
    for (const r of started) cleanups.push(() => r.container.stop({ remove: true, removeVolumes: true }).then(() => undefined));
    const proxies: FaultProxy[] = [
      await startFaultProxy("stall", ADDRESSES.stall.address, ADDRESSES.quay.address),
      await startFaultProxy("flaky", ADDRESSES.flaky.address, ADDRESSES.quay.address),
    ];
    for (const p of proxies) cleanups.push(() => p.stop());
    const reg = (k: keyof typeof ADDRESSES, u?: { user: string; password: string }): RegistryInfo => ({
      host: ADDRESSES[k].host,
      address: ADDRESSES[k].address,
      url: `http://${ADDRESSES[k].address}`,
      ...(u ?? {}),
    });
    const info: StackInfo = {
      dir,
      dockerHost: dockerd.dockerHost,
      socketPath: dockerd.socketPath,
      dockerdPid: dockerd.pid,
      awkwardUsers,
      registries: {
        ghcr: reg("ghcr", ghcrUser),
        ecr: reg("ecr", ecrUser),
        quay: reg("quay"),
        stall: reg("stall"),
        flaky: reg("flaky"),
      },
    };
    return { info, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function portOpen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port, timeout: 500 });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
}

export interface Footprint {
  dir: string;
  pids: number[];
  addresses: string[];
}

export function footprint(info: StackInfo): Footprint {
  return { dir: info.dir, pids: [info.dockerdPid], addresses: Object.values(info.registries).map((r) => r.address) };
}

/** What a stopped stack left behind: live processes, mounts, listeners or files. */
export async function leftovers(info: Footprint): Promise<string[]> {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      continue;
    }
    if (cmd.includes(info.dir) || info.pids.includes(Number(pid))) found.push(`process ${pid}: ${cmd.trim()}`);
  }
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    if (line.includes(info.dir)) found.push(`mount: ${line}`);
  }
  for (const a of info.addresses) {
    if (await portOpen(a, 80)) found.push(`listener on ${a}:80`);
  }
  if (existsSync(info.dir)) found.push(`directory ${info.dir}`);
  return found;
}
