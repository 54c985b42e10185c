// The daemon under load: idle RSS after start, /healthz latency at 200 req/s for
// 20 s while bakes run, and RSS growth while it pulls a 200 MB image.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import type Docker from "dockerode";
import type { AwsStandIn } from "../stack/aws/stand-in.ts";
import { pushImage, randomLayer, type RegistryTarget } from "../stack/images.ts";
import type { StackInfo } from "../stack/stack.ts";
import { startDaemon, until } from "../e2e/daemon-harness.ts";
import type { Box } from "../e2e/harness.ts";
import { fmtMs, percentile } from "./stats.ts";

const MB = 1_000_000;

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

export async function daemonBench(o: { stack: StackInfo; aws: AwsStandIn; work: string; agent: string; env: Record<string, string>; docker: Docker; target: RegistryTarget }) {
  const configFile = path.join(o.work, "daemon.json");
  const stateDir = path.join(o.work, "daemon-state");
  writeFileSync(configFile, JSON.stringify({ stateDir, dockerSocket: o.stack.dockerHost, awsRegion: "us-east-1", logLevel: "warn", boxId: "bench" }));
  const box = { dir: o.work, stateDir, home: o.env["HOME"]!, configFile, cpTokenFile: "", env: o.env } as unknown as Box;
  const big = await pushImage(o.target, "bench/big", "1", Array.from({ length: 8 }, () => randomLayer(25 * MB)));
  const small = await pushImage(o.target, "bench/small", "1", [randomLayer(4 * MB), randomLayer(4 * MB)]);

  // Node's own floor for the daemon's kinds of I/O, no library: an HTTP server, a
  // request over a unix socket, a POST, a watched directory, a hash.
  const floorScript = [
    `const http = require("node:http"), fs = require("node:fs"), crypto = require("node:crypto");`,
    `http.createServer((q, r) => r.end("ok")).listen(0, "127.0.0.1");`,
    `http.get({ socketPath: ${JSON.stringify(o.stack.socketPath)}, path: "/_ping" }, (r) => r.resume());`,
    `http.request("http://127.0.0.1:9/", { method: "POST" }).on("error", () => undefined).end("{}");`,
    `fs.watch(${JSON.stringify(o.work)}, () => undefined);`,
    `crypto.createHash("sha256").update("x").digest("hex");`,
  ].join("\n");
  const floorProc = spawn(process.execPath, ["-e", floorScript], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 2000));
  const floor = rssMB(floorProc.pid!);
  floorProc.kill("SIGKILL");

  const d = await startDaemon(box);
  const pid = d.proc.pid!;
  await new Promise((r) => setTimeout(r, 2000));
  const idle = rssMB(pid);
  await d.api("GET", "/readyz", undefined, null);
  const idleAfterReady = rssMB(pid);

  // RSS while pulling 200 MB.
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMB(pid))), 50);
  const before = rssMB(pid);
  const t0 = performance.now();
  const post = await d.api("POST", "/v1/bakes", { bakeId: "bk_big", orgId: "o", services: [{ name: "big", image: big.reference }] });
  if (post.status !== 202) throw new Error(`bake not accepted: ${post.text}`);
  const done = await until(async () => {
    const r = await d.api("GET", "/v1/bakes/bk_big");
    return r.json["status"] !== "running" ? r.json : undefined;
  }, 300_000, "big bake");
  const bigMs = performance.now() - t0;
  clearInterval(sampler);
  if (done["status"] !== "succeeded") throw new Error(`big bake failed: ${JSON.stringify(done)}`);

  // /healthz at 200 requests a second for 20 s while bakes run back to back.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const port = Number(new URL(d.url).port);
  const get = () =>
    new Promise<number>((resolve, reject) => {
      const t = performance.now();
      http
        .get({ host: "127.0.0.1", port, path: "/healthz", agent }, (res) => {
          res.resume();
          res.on("end", () => resolve(performance.now() - t));
        })
        .on("error", reject);
    });
  let baking = true;
  let bakes = 0;
  const loop = (async () => {
    while (baking) {
      await o.docker.getImage(small.reference).remove({ force: true }).catch(() => undefined);
      const id = `bk_load_${bakes++}`;
      await d.api("POST", "/v1/bakes", { bakeId: id, orgId: "o", services: [{ name: "s", image: small.reference }] });
      await until(async () => (await d.api("GET", `/v1/bakes/${id}`)).json["status"] !== "running", 60_000, "load bake");
    }
  })();
  const lat: number[] = [];
  const RATE = 200;
  const SECONDS = 20;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < RATE * SECONDS; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(get().then((ms) => void lat.push(ms)));
  }
  await Promise.all(pending);
  baking = false;
  await loop;
  agent.destroy();
  await d.stop("SIGTERM");

  return {
    name: "Daemon (targets: idle RSS ≤ 60 MB; /healthz p99 ≤ 10 ms at 200 req/s during bakes; RSS growth pulling 200 MB ≤ 20 MB)",
    rows: [
      ["measure", "value"],
      ["idle RSS 2 s after start", `${idle.toFixed(1)} MB`],
      ["Node's floor: HTTP server, unix-socket request, a POST, fs.watch, no library (2 s after start)", `${floor.toFixed(1)} MB`],
      ["RSS after first /readyz (AWS SDK loaded)", `${idleAfterReady.toFixed(1)} MB`],
      [`/healthz p50 (${lat.length} requests, ${bakes} bakes during the load)`, fmtMs(percentile(lat, 50)) + ` (${percentile(lat, 50).toFixed(2)} ms)`],
      ["/healthz p99", `${percentile(lat, 99).toFixed(2)} ms`],
      ["/healthz max", `${Math.max(...lat).toFixed(2)} ms`],
      [`RSS growth pulling ${(big.bytes / MB).toFixed(0)} MB (${fmtMs(bigMs)})`, `${(peak - before).toFixed(1)} MB (from ${before.toFixed(1)} to peak ${peak.toFixed(1)})`],
    ] as string[][],
    notes: [] as string[],
  };
}
