// The test stack's own dockerd: private mount namespace (its own /etc/hosts, and
// /run/containerd hidden so it supervises its own containerd), own socket, data
// root and exec root, no bridge and no iptables. It never touches another daemon.
// Besides the system's 20.10 it runs newer engines unpacked by
// scripts/fetch-engines.sh, with either image store.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync, openSync, closeSync, existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";

export type EngineVersion = "20.10" | "26.1" | "28.5";
/** classic: graph drivers (vfs); containerd: the containerd image store (snapshotters). */
export type ImageStore = "classic" | "containerd";

export interface Engine {
  version: EngineVersion;
  store: ImageStore;
}

export interface EngineInfo extends Engine {
  /** The daemon's own API version (GET /version), e.g. "1.51". */
  apiVersion: string;
}

const DEFAULT_ENGINE: Engine = { version: "20.10", store: "classic" };

/** Where scripts/fetch-engines.sh unpacks the newer engines. */
const ENGINES_DIR = process.env["SLOTHBOX_ENGINES_DIR"] ?? "/var/cache/slothbox-dev/engines";

const ENGINE_NAMES: Record<string, Engine> = {
  "20.10": DEFAULT_ENGINE,
  "26.1": { version: "26.1", store: "classic" },
  "26.1-containerd": { version: "26.1", store: "containerd" },
  "28.5": { version: "28.5", store: "classic" },
  "28.5-containerd": { version: "28.5", store: "containerd" },
};

/** The engine SLOTHBOX_TEST_ENGINE names (20.10, 26.1, 26.1-containerd, 28.5, 28.5-containerd), or 20.10 classic. */
export function engineFromEnv(env: Record<string, string | undefined> = process.env): Engine {
  const name = env["SLOTHBOX_TEST_ENGINE"];
  if (name === undefined || name === "") return DEFAULT_ENGINE;
  const engine = ENGINE_NAMES[name];
  if (!engine) throw new Error(`SLOTHBOX_TEST_ENGINE must be one of ${Object.keys(ENGINE_NAMES).join(", ")}, got ${name}`);
  return engine;
}

/**
 * Whether plain-HTTP registries need an HTTP answer on port 443: 26.1's containerd
 * store falls back from HTTPS to HTTP only after a TLS handshake that met an HTTP
 * reply, not after a refused connection (28.5's does both).
 */
export function needsHttpOn443(engine: Engine): boolean {
  return engine.version === "26.1" && engine.store === "containerd";
}

export function engineName(engine: Engine): string {
  return engine.store === "containerd" ? `${engine.version}-containerd` : engine.version;
}

export interface DockerdOptions {
  /** Short directory (unix socket paths are limited to 108 bytes). */
  dir: string;
  /** host name → loopback address, written to the daemon's private /etc/hosts. */
  hosts: Record<string, string>;
  /** Extra environment for dockerd (e.g. SSL_CERT_FILE for a test CA). */
  env?: Record<string, string>;
  /** Default: SLOTHBOX_TEST_ENGINE, else the system's 20.10 with the classic store. */
  engine?: Engine;
  /**
   * Registries served over plain HTTP. The containerd store falls back to HTTP only
   * for these names (the classic store also for any name resolving to loopback).
   * Default: every name in `hosts`.
   */
  insecureRegistries?: string[];
  /**
   * Puts the data root on a tmpfs of this size (mount's size=, e.g. "48m"), mounted in
   * the daemon's private namespace: a disk that really fills, and that no one has to
   * unmount — the mount ends with the daemon's namespace, however the daemon ends.
   */
  dataRootSize?: string;
}

export interface Dockerd {
  socketPath: string;
  dockerHost: string;
  pid: number;
  dir: string;
  engine: EngineInfo;
  /** From spawn to the first 200 of /_ping. */
  startMs: number;
  stop(): Promise<void>;
}

/** Bounded wait for dockerd to answer /_ping: it is ready in ~2 s on these machines. */
const READY_TIMEOUT_MS = 30_000;
/** dockerd stops its containers and containerd on SIGTERM; give it this long before SIGKILL. */
const STOP_TIMEOUT_MS = 20_000;

export function ping(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path: "/_ping", method: "GET", timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function apiVersion(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: "/version", method: "GET", timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => {
        const v = (JSON.parse(body) as { ApiVersion?: unknown }).ApiVersion;
        if (typeof v === "string") resolve(v);
        else reject(new Error(`GET /version answered without ApiVersion: ${body}`));
      });
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("GET /version timed out")));
    req.end();
  });
}

interface EngineLaunch {
  /** PATH for dockerd: it finds containerd, the shim and runc on it. */
  path: string;
  storageDriver: string;
  config: Record<string, unknown>;
}

function launchFor(engine: Engine, insecureRegistries: string[]): EngineLaunch {
  const systemPath = process.env["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (engine.version === "20.10") {
    if (engine.store === "containerd") throw new Error("dockerd 20.10 has no containerd image store; use 26.1-containerd or 28.5-containerd");
    return { path: systemPath, storageDriver: "vfs", config: {} };
  }
  const root = path.join(ENGINES_DIR, engine.version, "root");
  if (!existsSync(path.join(ENGINES_DIR, engine.version, ".complete"))) {
    throw new Error(`engine ${engine.version} is not in ${ENGINES_DIR}; run scripts/fetch-engines.sh first`);
  }
  const enginePath = `${root}/usr/bin:${root}/usr/sbin:${systemPath}`;
  if (engine.store === "classic") return { path: enginePath, storageDriver: "vfs", config: {} };
  // With vfs the containerd store answers a pull 200, then fails in the stream
  // with "snapshotter not loaded: vfs": it needs a snapshotter.
  return {
    path: enginePath,
    storageDriver: "overlayfs",
    config: { features: { "containerd-snapshotter": true }, "insecure-registries": insecureRegistries },
  };
}

export async function startDockerd(opts: DockerdOptions): Promise<Dockerd> {
  const { dir } = opts;
  const engine = opts.engine ?? engineFromEnv();
  const launch = launchFor(engine, opts.insecureRegistries ?? Object.keys(opts.hosts));
  mkdirSync(dir, { recursive: true });
  const hostsFile = path.join(dir, "hosts");
  const lines = ["127.0.0.1 localhost", "::1 localhost", ...Object.entries(opts.hosts).map(([h, ip]) => `${ip} ${h}`)];
  writeFileSync(hostsFile, lines.join("\n") + "\n");
  const configFile = path.join(dir, "daemon.json");
  writeFileSync(configFile, JSON.stringify(launch.config) + "\n");
  const socketPath = path.join(dir, "docker.sock");
  const dataRoot = path.join(dir, "data");
  mkdirSync(dataRoot, { recursive: true });
  const args = [
    "--host", `unix://${socketPath}`,
    "--data-root", dataRoot,
    "--exec-root", path.join(dir, "exec"),
    "--pidfile", path.join(dir, "docker.pid"),
    "--config-file", configFile,
    "--storage-driver", launch.storageDriver,
    "--bridge=none",
    "--iptables=false",
    "--ip-masq=false",
  ];
  const script =
    'mount --bind "$1" /etc/hosts && mkdir -p /run/containerd && mount -t tmpfs tmpfs /run/containerd && ' +
    '{ [ -z "$2" ] || mount -t tmpfs -o size="$2" tmpfs "$3"; } && shift 3 && exec dockerd "$@"';
  const log = openSync(path.join(dir, "dockerd.log"), "a");
  const started = Date.now();
  const child: ChildProcess = spawn(
    "unshare",
    ["--mount", "--propagation", "private", "sh", "-c", script, "sh", hostsFile, opts.dataRootSize ?? "", dataRoot, ...args],
    { stdio: ["ignore", log, log], env: { ...process.env, ...opts.env, PATH: launch.path } },
  );
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let alive = true;
  void exited.then(() => (alive = false));

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await ping(socketPath))) {
    if (!alive) throw new Error(`dockerd ${engineName(engine)} exited during start-up; see ${path.join(dir, "dockerd.log")}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`dockerd ${engineName(engine)} did not answer /_ping within ${READY_TIMEOUT_MS} ms; see ${path.join(dir, "dockerd.log")}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const startMs = Date.now() - started;

  const stop = async () => {
    if (!alive) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };
  let info: EngineInfo;
  try {
    info = { ...engine, apiVersion: await apiVersion(socketPath) };
  } catch (err) {
    await stop();
    throw err;
  }
  return { socketPath, dockerHost: `unix://${socketPath}`, pid: child.pid ?? -1, dir, engine: info, startMs, stop };
}
