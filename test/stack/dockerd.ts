// The test stack's own dockerd: private mount namespace (its own /etc/hosts, and
// /run/containerd hidden so it supervises its own containerd), own socket, data
// root and exec root, no bridge and no iptables. It never touches another daemon.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync, openSync, closeSync } from "node:fs";
import http from "node:http";
import path from "node:path";

export interface DockerdOptions {
  /** Short directory (unix socket paths are limited to 108 bytes). */
  dir: string;
  /** host name → loopback address, written to the daemon's private /etc/hosts. */
  hosts: Record<string, string>;
  /** Extra environment for dockerd (e.g. SSL_CERT_FILE for a test CA). */
  env?: Record<string, string>;
}

export interface Dockerd {
  socketPath: string;
  dockerHost: string;
  pid: number;
  dir: string;
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

export async function startDockerd(opts: DockerdOptions): Promise<Dockerd> {
  const { dir } = opts;
  mkdirSync(dir, { recursive: true });
  const hostsFile = path.join(dir, "hosts");
  const lines = ["127.0.0.1 localhost", "::1 localhost", ...Object.entries(opts.hosts).map(([h, ip]) => `${ip} ${h}`)];
  writeFileSync(hostsFile, lines.join("\n") + "\n");
  const configFile = path.join(dir, "daemon.json");
  writeFileSync(configFile, "{}\n");
  const socketPath = path.join(dir, "docker.sock");
  const args = [
    "--host", `unix://${socketPath}`,
    "--data-root", path.join(dir, "data"),
    "--exec-root", path.join(dir, "exec"),
    "--pidfile", path.join(dir, "docker.pid"),
    "--config-file", configFile,
    "--storage-driver", "vfs",
    "--bridge=none",
    "--iptables=false",
    "--ip-masq=false",
  ];
  const script =
    'mount --bind "$1" /etc/hosts && mkdir -p /run/containerd && mount -t tmpfs tmpfs /run/containerd && shift && exec dockerd "$@"';
  const log = openSync(path.join(dir, "dockerd.log"), "a");
  const child: ChildProcess = spawn(
    "unshare",
    ["--mount", "--propagation", "private", "sh", "-c", script, "sh", hostsFile, ...args],
    { stdio: ["ignore", log, log], env: { ...process.env, ...opts.env } },
  );
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let alive = true;
  void exited.then(() => (alive = false));

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await ping(socketPath))) {
    if (!alive) throw new Error(`dockerd exited during start-up; see ${path.join(dir, "dockerd.log")}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`dockerd did not answer /_ping within ${READY_TIMEOUT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    socketPath,
    dockerHost: `unix://${socketPath}`,
    pid: child.pid ?? -1,
    dir,
    async stop() {
      if (!alive) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
