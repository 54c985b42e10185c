// A real forward proxy on loopback: Debian's tinyproxy, with Basic auth, in a
// mount namespace of its own whose /etc/hosts names the test's hosts (names
// under .test): they resolve for the proxy only, so a request reaches them only
// through it, and no query for them leaves the machine. tinyproxy writes its log
// to stdout in the foreground (-d): one "Request (file descriptor N): <request
// line>" per request, CONNECT or absolute-form; the password never appears in it.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export interface ForwardProxy {
  /** http://user:password@127.0.0.1:port */
  url: string;
  /** http://127.0.0.1:port */
  address: string;
  password: string;
  /** The request lines the proxy was asked, in order ("CONNECT host:port HTTP/1.1", "POST http://… HTTP/1.1"). */
  requests(): string[];
  log(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** `hosts`: name → loopback address, for the proxy's eyes only. */
export async function startForwardProxy(opts: { hosts: Record<string, string>; user: string; password: string }): Promise<ForwardProxy> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-proxy-"));
  const port = await freePort();
  const hostsFile = path.join(dir, "hosts");
  writeFileSync(hostsFile, ["127.0.0.1 localhost", ...Object.entries(opts.hosts).map(([name, ip]) => `${ip} ${name}`)].join("\n") + "\n");
  const conf = path.join(dir, "tinyproxy.conf");
  writeFileSync(
    conf,
    [`Port ${port}`, "Listen 127.0.0.1", "Timeout 60", "MaxClients 64", "LogLevel Connect", `BasicAuth ${opts.user} ${opts.password}`, "DisableViaHeader Yes", ""].join("\n"),
    { mode: 0o600 },
  );
  const child: ChildProcess = spawn(
    "unshare",
    ["--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hostsFile, "tinyproxy", "-d", "-c", conf],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout!.on("data", (c: Buffer) => (log += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready when it takes a connection.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`tinyproxy did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://${encodeURIComponent(opts.user)}:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`,
    address: `http://127.0.0.1:${port}`,
    password: opts.password,
    requests: () => [...log.matchAll(/Request \(file descriptor \d+\): (.+)$/gm)].map((m) => m[1]!.trim()),
    log: () => log,
    stop,
  };
}
