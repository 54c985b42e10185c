// The live box: the daemon as a box runs it. Its RSS in steady state (the
// scenario of issue 26: start-up reconcile, /readyz every 10 s for 60 s, one API
// bake, idle 30 s), a warm API bake (POST /v1/bakes on a running daemon) against
// the engine's limit with the daemon's CPU per bake, /healthz latency at 200
// requests/s for 20 s while bakes run back to back, and RSS growth while it pulls
// a 200 MB image. CPU and RSS come from /proc: load on the machine barely moves
// them, where it moves every wall-clock ratio.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import type Docker from "dockerode";
import type { AwsStandIn } from "../stack/aws/stand-in.ts";
import { pushImage, randomLayer, type PushedImage, type RegistryTarget } from "../stack/images.ts";
import type { StackInfo } from "../stack/stack.ts";
import { startDaemon, until, type Daemon } from "../e2e/daemon-harness.ts";
import type { Box } from "../e2e/harness.ts";
import { envPairs, fmtMs } from "./stats.ts";
import { tracingSocket } from "./engine-trace.ts";

const MB = 1_000_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

/** utime + stime of a live process, in seconds (USER_HZ 100: 10 ms steps). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export interface LiveBox {
  stack: StackInfo;
  aws: AwsStandIn;
  work: string;
  agent: string;
  env: Record<string, string>;
  docker: Docker;
  /** Where the anonymous test images go. */
  target: RegistryTarget;
  /** The services of the cold 6-image bake, and the credentials they name. */
  services: unknown[];
  credentials: unknown[];
  /** The engine's limit for those images, in ms; and what makes them cold again. */
  limitPull: () => Promise<number>;
  removeImages: () => Promise<void>;
  rounds: number;
  /** Node flags the daemon runs with (what the unit would give it). */
  nodeArgs?: string[];
  /** Environment the daemon gets beyond the box's (e.g. MALLOC_ARENA_MAX). */
  daemonEnv?: Record<string, string>;
}

/** Values of the daemon's /metrics (prom-client's default Node metrics): `name` or `name{label}`. */
async function metrics(d: Daemon): Promise<Map<string, number>> {
  const text = (await d.api("GET", "/metrics", undefined, null)).text;
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    const x = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (x) m.set(x[1]!, Number(x[2]));
  }
  return m;
}

/** BENCH_HEAP_SNAPSHOT=<dir>: the steady state's heap, for a look at what it holds (the daemon runs with --heapsnapshot-signal=SIGUSR2). */
async function heapSnapshot(pid: number, cwd: string): Promise<void> {
  const dir = process.env["BENCH_HEAP_SNAPSHOT"]!;
  const before = new Set(readdirSync(cwd));
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 600; i++) {
    const f = readdirSync(cwd).find((x) => !before.has(x) && x.endsWith(".heapsnapshot"));
    if (f && statSync(path.join(cwd, f)).size > 0) {
      await sleep(2000);
      renameSync(path.join(cwd, f), path.join(dir, f));
      return;
    }
    await sleep(100);
  }
}

let boxSeq = 0;

/** A daemon as the unit runs it; `cacheDir`: its compile cache (NODE_COMPILE_CACHE). */
async function daemonFor(o: LiveBox, cacheDir: string, extra: Record<string, string> = {}, dockerHost = o.stack.dockerHost) {
  const dir = mkdtempSync(path.join(o.work, "box-"));
  const configFile = path.join(dir, "agent.json");
  const stateDir = path.join(dir, "state");
  writeFileSync(configFile, JSON.stringify({ stateDir, dockerSocket: dockerHost, awsRegion: "us-east-1", boxId: `bench-${boxSeq++}` }));
  const box = { dir, stateDir, home: o.env["HOME"]!, configFile, cpTokenFile: "", env: o.env } as unknown as Box;
  const d = await startDaemon(box, { env: { NODE_COMPILE_CACHE: cacheDir, ...o.daemonEnv, ...extra }, agent: [process.execPath, ...(o.nodeArgs ?? []), o.agent] });
  await until(() => d.output().includes("reconcile ("), 60_000, "start-up reconcile");
  return d;
}

/** Resolves when the daemon logs the bake's end (the log line is written as the event is). */
function bakeEnded(d: Daemon, bakeId: string): Promise<void> {
  const done = new RegExp(`"bakeId":"${bakeId}"[^\\n]*"event":"bake\\.(succeeded|failed)"|"event":"bake\\.(succeeded|failed)"[^\\n]*"bakeId":"${bakeId}"`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bake ${bakeId} did not end within 5 min:\n${d.output().slice(-4000)}`)), 300_000);
    const check = () => {
      const m = done.exec(d.output());
      if (!m) return false;
      clearTimeout(timer);
      for (const s of [d.proc.stdout!, d.proc.stderr!]) s.off("data", check);
      if (m[0].includes("bake.failed")) reject(new Error(`bake ${bakeId} failed:\n${d.output().slice(-4000)}`));
      else resolve();
      return true;
    };
    if (!check()) for (const s of [d.proc.stdout!, d.proc.stderr!]) s.on("data", check);
  });
}

let bakeSeq = 0;
/** One API bake of `services`: wall ms from POST to its end, the daemon's CPU seconds over it, and its longest pull (the record's durationMs). */
async function apiBake(o: LiveBox, d: Daemon, services: unknown[]): Promise<{ ms: number; cpu: number; longestPull: number }> {
  const bakeId = `bk_api_${bakeSeq++}`;
  const cpu0 = cpuSeconds(d.proc.pid!);
  const t0 = performance.now();
  const ended = bakeEnded(d, bakeId);
  const body = { bakeId, orgId: "org_bench", registryCredentials: o.credentials, services };
  let post = await d.api("POST", "/v1/bakes", body);
  // The previous bake's bake.succeeded line is logged a few awaits before the daemon takes the next (its running-bakes record is removed in between): 409, asked again.
  for (let i = 0; i < 100 && post.status === 409; i++) {
    await sleep(10);
    post = await d.api("POST", "/v1/bakes", body);
  }
  if (post.status !== 202) throw new Error(`bake not accepted: ${post.status} ${post.text}`);
  await ended;
  const ms = performance.now() - t0;
  const cpu = cpuSeconds(d.proc.pid!) - cpu0;
  const record = (await d.api("GET", `/v1/bakes/${bakeId}`)).json as { services?: { durationMs?: number }[] };
  return { ms, cpu, longestPull: Math.max(0, ...(record.services ?? []).map((x) => x.durationMs ?? 0)) };
}

/**
 * Steady-state RSS: start-up reconcile, /readyz every 10 s for 60 s, one API bake
 * of the six small images (cold), idle 30 s. `warmCache`: the compile cache
 * survives restarts (CacheDirectory=); otherwise it starts empty, as it does
 * under PrivateTmp=yes.
 */
export async function steadyStateRss(o: LiveBox, warmCache: boolean, timeline = { readyEvery: 10_000, readyFor: 60_000, idle: 30_000 }) {
  const cacheDir = mkdtempSync(path.join(o.work, "compile-cache-"));
  if (warmCache) {
    const first = await daemonFor(o, cacheDir);
    await first.api("GET", "/readyz", undefined, null);
    await first.stop("SIGTERM");
  }
  await o.removeImages();
  const d = await daemonFor(o, cacheDir);
  const pid = d.proc.pid!;
  const afterStart = rssMB(pid);
  let afterReady = 0;
  for (let t = 0; t <= timeline.readyFor; t += timeline.readyEvery) {
    const r = await d.api("GET", "/readyz", undefined, null);
    if (r.status !== 200) throw new Error(`not ready: ${r.text}`);
    if (t === 0) afterReady = rssMB(pid);
    if (t < timeline.readyFor) await sleep(timeline.readyEvery);
  }
  const bake = await apiBake(o, d, o.services);
  const afterBake = rssMB(pid);
  await sleep(timeline.idle);
  const steady = rssMB(pid);
  if (process.env["BENCH_HEAP_SNAPSHOT"]) await heapSnapshot(pid, process.cwd());
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kB = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? 0) / 1024;
  const anon = kB("Anonymous");
  const file = kB("Rss") - anon;
  // Read after the RSS: answering /metrics allocates.
  const m = await metrics(d);
  const mb = (k: string) => (m.get(k) ?? 0) / 2 ** 20;
  const heap = {
    total: mb("nodejs_heap_size_total_bytes"),
    used: mb("nodejs_heap_size_used_bytes"),
    newSpace: mb('nodejs_heap_space_size_total_bytes{space="new"}'),
    oldSpace: mb('nodejs_heap_space_size_total_bytes{space="old"}'),
    code: mb('nodejs_heap_space_size_total_bytes{space="code"}'),
    external: mb("nodejs_external_memory_bytes"),
  };
  await d.stop("SIGTERM");
  return { afterStart, afterReady, afterBake, steady, bakeMs: bake.ms, anon, file, heap };
}

/**
 * The warm API bake against the limit, interleaved round by round; the daemon's CPU per bake.
 * For trying one change against the last, a second daemon bakes in the same rounds:
 * BENCH_API_COMPARE names another build's slothbox-agent.mjs, BENCH_API_COMPARE_ENV
 * (`K=V K=V`) gives it environment of its own (e.g. SLOTHBOX_PULL_CONCURRENCY=6).
 */
export async function warmApiBake(o: LiveBox) {
  const agentName = "agent daemon (POST /v1/bakes)";
  const otherAgent = process.env["BENCH_API_COMPARE"];
  const otherEnv = process.env["BENCH_API_COMPARE_ENV"];
  const trace = process.env["BENCH_API_TRACE"] ? tracingSocket(o.stack.socketPath, o.work) : undefined;
  const daemons: [string, Daemon][] = [[agentName, await daemonFor(o, mkdtempSync(path.join(o.work, "compile-cache-")), {}, trace?.dockerHost)]];
  if (otherAgent || otherEnv) {
    const env = envPairs(otherEnv);
    const d = await daemonFor({ ...o, agent: otherAgent ?? o.agent }, mkdtempSync(path.join(o.work, "compile-cache-")), env);
    daemons.push([`daemon of ${[otherAgent, otherEnv].filter(Boolean).join(", ")}`, d]);
  }
  for (const [, d] of daemons) {
    // A box's daemon has answered /readyz long before a bake comes: the SDK is loaded.
    await d.api("GET", "/readyz", undefined, null);
    // One bake outside the measurement: the compile cache and the engine warm.
    await o.removeImages();
    await apiBake(o, d, o.services);
  }
  const limitName = "limit (6 pulls at once, Engine API)";
  const times: Record<string, number[]> = Object.fromEntries([...daemons.map(([n]) => [n, []]), [limitName, []]]);
  const cpu: number[] = [];
  const outside: number[] = [];
  const contenders = [...daemons.map(([n]) => n), limitName];
  for (let round = 0; round < o.rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const name = contenders[(k + round) % contenders.length]!;
      await o.removeImages();
      const d = daemons.find(([n]) => n === name)?.[1];
      if (!d) {
        times[limitName]!.push(await o.limitPull());
        continue;
      }
      const traced = trace?.lines.length ?? 0;
      const t0 = performance.now();
      const r = await apiBake(o, d, o.services);
      times[name]!.push(r.ms);
      if (trace && name === agentName && round < 2) {
        process.stderr.write(`engine requests of the API bake (${fmtMs(r.ms)}), from the POST:\n${trace.since(traced, t0)}\n`);
      }
      if (name !== agentName) continue;
      cpu.push(r.cpu);
      outside.push(r.ms - r.longestPull);
    }
    process.stderr.write(`warm API bake: round ${round + 1}/${o.rounds} ${Object.entries(times).map(([n, xs]) => `${n} ${fmtMs(xs.at(-1)!)}`).join(", ")}, daemon CPU ${cpu.at(-1)!.toFixed(2)} s\n`);
  }
  const rss = rssMB(daemons[0]![1].proc.pid!);
  for (const [, d] of daemons) await d.stop("SIGTERM");
  trace?.close();
  return { times, cpu, rss, outside };
}

/** /healthz at 200 requests a second for 20 s while one-image bakes run back to back; and RSS growth pulling 200 MB. */
export async function healthzUnderLoad(o: LiveBox) {
  const big = await pushImage(o.target, "bench/big", "1", Array.from({ length: 8 }, () => randomLayer(25 * MB)));
  const small: PushedImage = await pushImage(o.target, "bench/small", "1", [randomLayer(4 * MB), randomLayer(4 * MB)]);
  const d = await daemonFor(o, mkdtempSync(path.join(o.work, "compile-cache-")));
  const pid = d.proc.pid!;
  await d.api("GET", "/readyz", undefined, null);

  // RSS and CPU while pulling 200 MB.
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMB(pid))), 50);
  const before = rssMB(pid);
  const bigRun = await apiBake(o, d, [{ name: "big", image: big.reference }]);
  clearInterval(sampler);

  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const port = Number(new URL(d.url).port);
  const get = (to = port) =>
    new Promise<number>((resolve, reject) => {
      const t = performance.now();
      http
        .get({ host: "127.0.0.1", port: to, path: "/healthz", agent }, (res) => {
          res.resume();
          res.on("end", () => resolve(performance.now() - t));
        })
        .on("error", reject);
    });
  // A control: Node's own HTTP server answering "ok", asked on the same schedule, on the same loaded machine.
  const floorPort = await new Promise<number>((resolve) => {
    const srv = http.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address() as { port: number };
      srv.close(() => resolve(a.port));
    });
  });
  const floor = spawn(process.execPath, ["-e", `require("node:http").createServer((q, r) => r.end("ok")).listen(${floorPort}, "127.0.0.1")`], { stdio: "ignore" });
  await until(() => get(floorPort).then(() => true, () => false), 10_000, "the floor server");
  // Reading /metrics resets prom-client's event-loop lag histogram: the next read covers the load alone.
  await metrics(d);
  let baking = true;
  let bakes = 0;
  const loop = (async () => {
    while (baking) {
      await o.docker.getImage(small.reference).remove({ force: true }).catch(() => undefined);
      await apiBake(o, d, [{ name: "s", image: small.reference }]);
      bakes++;
    }
  })();
  const lat: number[] = [];
  const floorLat: number[] = [];
  const RATE = 200;
  const SECONDS = 20;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < RATE * SECONDS; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(get().then((ms) => void lat.push(ms)));
    pending.push(get(floorPort).then((ms) => void floorLat.push(ms)));
  }
  await Promise.all(pending);
  baking = false;
  await loop;
  const m = await metrics(d);
  agent.destroy();
  floor.kill("SIGKILL");
  await d.stop("SIGTERM");
  const lag = { max: (m.get("nodejs_eventloop_lag_max_seconds") ?? 0) * 1000 };
  return { lat, floorLat, lag, bakes, big: { mb: big.bytes / MB, ms: bigRun.ms, cpu: bigRun.cpu, before, peak } };
}

/** Node's own floor for the daemon's kinds of I/O, no library: an HTTP server, a request over a unix socket, a POST, a watched directory, a hash. */
export async function nodeFloor(o: LiveBox): Promise<number> {
  const floorScript = [
    `const http = require("node:http"), fs = require("node:fs"), crypto = require("node:crypto");`,
    `http.createServer((q, r) => r.end("ok")).listen(0, "127.0.0.1");`,
    `http.get({ socketPath: ${JSON.stringify(o.stack.socketPath)}, path: "/_ping" }, (r) => r.resume());`,
    `http.request("http://127.0.0.1:9/", { method: "POST" }).on("error", () => undefined).end("{}");`,
    `fs.watch(${JSON.stringify(o.work)}, () => undefined);`,
    `crypto.createHash("sha256").update("x").digest("hex");`,
  ].join("\n");
  const p = spawn(process.execPath, ["-e", floorScript], { stdio: "ignore" });
  await sleep(2000);
  const floor = rssMB(p.pid!);
  p.kill("SIGKILL");
  return floor;
}
