// Starts the built agent as a daemon (a real process on a real port) and talks to it.
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { agentFor, ROOT, runEnv, type Box, type RunOptions } from "./harness.ts";

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface Daemon {
  url: string;
  token: string;
  proc: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  api(method: string, p: string, body?: unknown, token?: string | null): Promise<{ status: number; json: Record<string, unknown>; text: string }>;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** One request over http or https (global fetch cannot be given a CA); rejects when no answer comes. */
export function request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string; ca?: string } = {}): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const options = { method: init.method ?? "GET", headers: init.headers ?? {}, timeout: 30_000 };
    const onResponse = (res: http.IncomingMessage) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      res.on("error", reject);
    };
    const req = u.protocol === "https:" ? https.request(u, { ...options, ...(init.ca ? { ca: init.ca } : {}) }, onResponse) : http.request(u, options, onResponse);
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`no answer from ${url}`)));
    req.end(init.body);
  });
}

/** The package's launcher runs the daemon with these Node flags: the tests run it as a box does. */
const DAEMON_NODE_FLAGS = JSON.parse(readFileSync(path.join(ROOT, "scripts/daemon-node-flags.json"), "utf8")) as string[];

/** `tls`: the daemon serves https with a certificate the test's CA signed for 127.0.0.1; `agent`: the command that runs the agent (default: this Node with the built bundle). */
export async function startDaemon(
  box: Box,
  opts: { port?: number; tls?: { ca: string } } & Pick<RunOptions, "env" | "unset" | "hostsFileOnly" | "hostsFile" | "agent"> = {},
): Promise<Daemon> {
  const port = opts.port ?? (await freePort());
  const token = "api-" + Math.random().toString(36).slice(2);
  const tokenFile = path.join(box.dir, "api-token");
  writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
  const env = runEnv({ ...box.env, SLOTHBOX_LISTEN: `127.0.0.1:${port}`, SLOTHBOX_API_TOKEN_FILE: tokenFile, SLOTHBOX_LOG_LEVEL: "info" }, opts);
  const agent = agentFor(opts, box.dir, DAEMON_NODE_FLAGS);
  const proc = spawn(agent[0]!, [...agent.slice(1), "daemon", "--config", box.configFile], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  proc.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  const url = `${opts.tls ? "https" : "http"}://127.0.0.1:${port}`;
  const get = async (p: string, init: { method: string; headers: Record<string, string>; body?: string }) => {
    if (!opts.tls) {
      const res = await fetch(url + p, init);
      return { status: res.status, text: await res.text() };
    }
    return request(url + p, { ...init, ca: opts.tls.ca });
  };
  const d: Daemon = {
    url,
    token,
    proc,
    output: () => out,
    exited,
    async api(method, p, body, tok = token) {
      const headers: Record<string, string> = {};
      if (tok !== null) headers["authorization"] = `Bearer ${tok}`;
      if (body !== undefined) headers["content-type"] = "application/json";
      const res = await get(p, { method, headers, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) });
      const text = res.text;
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        json = {};
      }
      return { status: res.status, json, text };
    },
    async stop(signal = "SIGTERM", timeoutMs = 30_000) {
      const t0 = Date.now();
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      const r = await exited;
      clearTimeout(timer);
      return { ...r, ms: Date.now() - t0 };
    },
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if ((await get("/healthz", { method: "GET", headers: {} })).status === 200) return d;
    } catch {
      // not listening yet
    }
    if (proc.exitCode !== null) throw new Error(`daemon exited ${proc.exitCode}:\n${out}`);
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`daemon did not answer /healthz:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls `fn` until it returns a truthy value, at most `ms`. */
export async function until<T>(fn: () => Promise<T> | T, ms = 30_000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The bake's record once it has ended (GET /v1/bakes/<id> no longer `running`), at most `ms`. */
export async function bakeDone(d: Daemon, bakeId: string, ms = 60_000): Promise<Record<string, unknown>> {
  return until(
    async () => {
      const r = await d.api("GET", `/v1/bakes/${bakeId}`);
      return r.json["status"] !== "running" && r.status === 200 ? r.json : undefined;
    },
    ms,
    `bake ${bakeId} to finish`,
  );
}
