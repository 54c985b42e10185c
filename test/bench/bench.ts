// `npm run bench`: the agent against the engine's own limit and against what
// operators use today, on the local stack, on dockerd 20.10 (classic image store)
// and 28.5 (containerd image store), interleaved round by round (these machines
// are noisy), medians with min–max and ratios. Writes docs/benchmarks.md.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Docker from "dockerode";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { engineFromEnv, engineName, type Engine } from "../stack/dockerd.ts";
import { pushImage, randomLayer, type Layer, type PushedImage, type RegistryTarget } from "../stack/images.ts";
import { ECR_ACCOUNT, startStack, type StackInfo } from "../stack/stack.ts";
import { pullAllAtOnce, removeImages as removeFrom } from "./engine.ts";
import { envPairs, fmtMs, percentile, summary, table } from "./stats.ts";
import { setLatency } from "../stack/registry-front.ts";
import { signedBench } from "./signed-bench.ts";
import { healthzUnderLoad, nodeFloor, steadyStateRss, warmApiBake, type LiveBox } from "./daemon-bench.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const AGENT = path.join(ROOT, "dist/slothbox-agent.mjs");
const PREFIX = "/slothbox/registry-credentials/";
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 5);
const MB = 1_000_000;
/** Which sections run (all by default): small, one, large, warm, signed, api, rss, healthz. `BENCH_ENGINES=20.10 BENCH_ONLY=api,rss` iterates on one. */
const ONLY = new Set((process.env["BENCH_ONLY"] ?? "small,one,large,warm,signed,api,rss,healthz").split(","));
/** Node flags for the daemon: by default the package's launcher's (scripts/daemon-node-flags.json); BENCH_DAEMON_NODE_ARGS tries others ("" for none). */
const DAEMON_NODE_ARGS = (process.env["BENCH_DAEMON_NODE_ARGS"] ?? (JSON.parse(readFileSync(path.join(ROOT, "scripts/daemon-node-flags.json"), "utf8")) as string[]).join(" "))
  .split(" ")
  .filter(Boolean);
/** Node flags for every other command, the package's launcher's (scripts/cli-node-flags.json): the Packer path runs `bake` with them. */
const CLI_NODE_ARGS = JSON.parse(readFileSync(path.join(ROOT, "scripts/cli-node-flags.json"), "utf8")) as string[];
/** Environment for the daemon, `K=V K=V` (e.g. `MALLOC_ARENA_MAX=2`). */
const DAEMON_ENV = envPairs(process.env["BENCH_DAEMON_ENV"]);
/** Milliseconds each registry request waits in the stack's registry fronts (a partial run: the page is left alone). */
const REGISTRY_LATENCY_MS = Number(process.env["BENCH_REGISTRY_LATENCY_MS"] ?? 0);
const ENGINES: Engine[] = (process.env["BENCH_ENGINES"] ?? "20.10,28.5-containerd").split(",").map((n) => engineFromEnv({ SLOTHBOX_TEST_ENGINE: n }));

if (process.getuid?.() !== 0) {
  console.error("npm run bench starts its own dockerd and needs root.");
  process.exit(2);
}

interface Result {
  name: string;
  rows: string[][];
  notes: string[];
}
interface BenchImage {
  img: PushedImage;
  target: RegistryTarget;
  cred?: string;
}

/** CPU seconds of this process's reaped children (cutime + cstime; USER_HZ 100): a child's own CPU is the difference around its run. */
function childrenCpu(): number {
  const f = readFileSync("/proc/self/stat", "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(f[13]) + Number(f[14])) / 100;
}

/** Busy and total jiffies of the whole machine (/proc/stat): how busy both CPUs were around a run. */
function machineCpu(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}
/** The share of both CPUs busy during each run of a contender, by name. */
const busyShare: Record<string, number[]> = {};

function run(cmd: string, args: string[], env: Record<string, string>, input?: string): Promise<{ ms: number; code: number | null; out: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env, stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let out = "";
    p.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    p.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    if (input !== undefined) p.stdin!.end(input);
    p.on("exit", (code) => resolve({ ms: performance.now() - t0, code, out }));
  });
}

const layersOf = (n: number, total: number): Layer[] => Array.from({ length: n }, () => randomLayer(Math.floor(total / n)));

async function interleaved(name: string, contenders: Record<string, () => Promise<number>>, before: () => Promise<void>): Promise<Record<string, number[]>> {
  const names = Object.keys(contenders);
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = names.map((_, k) => names[(k + round) % names.length]!);
    for (const n of order) {
      await before();
      const m0 = machineCpu();
      times[n]!.push(await contenders[n]!());
      const m1 = machineCpu();
      (busyShare[`${name} ${n}`] ??= []).push((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total));
    }
    process.stderr.write(`${name}: round ${round + 1}/${ROUNDS} ${names.map((n) => `${n} ${fmtMs(times[n]!.at(-1)!)}`).join(", ")}\n`);
  }
  return times;
}

function rowsFor(times: Record<string, number[]>, ref: string): string[][] {
  const r = summary(times[ref]!);
  return Object.entries(times).map(([n, xs]) => {
    const s = summary(xs);
    return [n, fmtMs(s.median), `${fmtMs(s.min)} – ${fmtMs(s.max)}`, n === ref ? "1.00" : (s.median / r.median).toFixed(2)];
  });
}
const HEAD = ["contender", "median", "min – max", "ratio"];
const ratio = (times: Record<string, number[]>, a: string, b: string) => summary(times[a]!).median / summary(times[b]!).median;
const verdict = (x: number, target: number) => `${x.toFixed(2)} (target ≤ ${target.toFixed(2)}: ${x <= target ? "met" : "missed"})`;

const LOAD_START = os.loadavg().map((x) => x.toFixed(2)).join(", ");
const stack = await startStack({ engines: ENGINES });
const aws = new AwsStandIn();
// Interrupted, the bench still stops the dockerds and registries it started.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    process.stderr.write(`${sig}: stopping the stack\n`);
    void Promise.allSettled([aws.stop(), stack.stop()]).then(() => process.exit(130));
  });
}
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-bench-"));
const results: Result[] = [];
/** Issue 26's targets, one row each, gathered as the sections run. */
const targets: string[][] = [["path", "measure", "store", "value", "target", ""]];
const storeOf = (e: Engine) => (e.store === "classic" ? "classic (20.10)" : `containerd (${e.version})`);
function target(pathName: string, measure: string, e: Engine, value: string, goal: string, met: boolean | undefined) {
  targets.push([pathName, measure, storeOf(e), value, goal, met === undefined ? "" : met ? "met" : "missed"]);
}
try {
  await aws.start();
  const { ghcr, ecr, quay } = stack.info.registries;
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
  const T = { ghcr: ghcr.push, ecr: ecr.push, quay: quay.push };
  process.stderr.write("pushing images…\n");

  // Small: 6 images, 3–4 layers, 4–8 MB, two sharing a base, on three registries; 7 services.
  const base = randomLayer(2 * MB);
  const small: BenchImage[] = [];
  const push = async (list: BenchImage[], target: RegistryTarget, repo: string, layers: Layer[], cred?: string) =>
    list.push({ img: await pushImage(target, repo, "1", layers), target, ...(cred ? { cred } : {}) });
  await push(small, T.ghcr, "bench/api", [base, ...layersOf(2, 4 * MB)], "rc_gh");
  await push(small, T.ghcr, "bench/web", [base, ...layersOf(3, 5 * MB)], "rc_gh");
  await push(small, T.ecr, "bench/worker", layersOf(4, 8 * MB), "rc_ecr");
  await push(small, T.ecr, "bench/jobs", layersOf(3, 6 * MB), "rc_ecr");
  await push(small, T.quay, "bench/cache", layersOf(3, 4 * MB));
  await push(small, T.quay, "bench/proxy", layersOf(4, 7 * MB));
  // Large: 3 images of 100–200 MB with 8–12 layers, where the fixed costs should vanish.
  const large: BenchImage[] = [];
  if (ONLY.has("large")) {
    await push(large, T.ghcr, "bench/large-api", layersOf(8, 110 * MB), "rc_gh");
    await push(large, T.ecr, "bench/large-worker", layersOf(10, 150 * MB), "rc_ecr");
    await push(large, T.quay, "bench/large-ml", layersOf(12, 200 * MB));
  }

  const creds = [
    { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" },
    { id: "rc_ecr", type: "ecr", registry: ecr.host },
  ];
  const servicesOf = (list: BenchImage[]) => list.map((i, n) => ({ name: `svc${n}`, image: i.img.reference, ...(i.cred ? { registryCredentialId: i.cred } : { catalog: true }) }));
  const smallServices = [...servicesOf(small), { name: "svc-shared", image: small[0]!.img.reference, registryCredentialId: "rc_gh" }];
  const home = path.join(work, "home");
  mkdirSync(home);
  const agentEnv = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home, ...aws.env() };
  let seq = 0;
  // After the pushes: every registry request waits this long first (registries across a network, as a box has them).
  if (REGISTRY_LATENCY_MS > 0) for (const r of [ghcr, ecr, quay]) await setLatency(r.control, REGISTRY_LATENCY_MS);

  for (const engine of ENGINES) {
    const info: StackInfo = stack.infoFor(engine);
    const label = engineName(engine) === "20.10" ? "dockerd 20.10, classic store" : `dockerd ${engine.version}, ${engine.store} store`;
    const docker = new Docker({ socketPath: info.socketPath });
    const configFile = path.join(work, `agent-${seq}.json`);
    writeFileSync(configFile, JSON.stringify({ stateDir: path.join(work, `state-${seq}`), dockerSocket: info.dockerHost, awsRegion: "us-east-1", logLevel: "warn" }));
    const writeSpec = (svcs: unknown[]) => {
      const f = path.join(work, `spec-${seq}.json`);
      writeFileSync(f, JSON.stringify({ bakeId: `bk_bench_${seq++}`, orgId: "org_bench", registryCredentials: creds, services: svcs }));
      return f;
    };
    let lastCpu = 0;
    const agentBake = async (svcs: unknown[], env: Record<string, string> = {}) => {
      const cpu0 = childrenCpu();
      const r = await run(process.execPath, [...CLI_NODE_ARGS, AGENT, "bake", "--spec", writeSpec(svcs), "--config", configFile, "--no-report"], { ...agentEnv, ...env });
      lastCpu = childrenCpu() - cpu0;
      if (r.code !== 0) throw new Error(`agent bake failed:\n${r.out}`);
      return r.ms;
    };
    const removeImages = (list: BenchImage[]) => removeFrom(docker, list.map((i) => i.img.reference));
    // The engine's limit: every image at once, straight through the Engine API, auth prepared.
    const customer: Record<string, { user?: string; password?: string }> = { [ghcr.host]: ghcr, [ecr.host]: ecr };
    const limitPull = (list: BenchImage[]) =>
      pullAllAtOnce(
        docker,
        list.map((i) => {
          const c = i.cred ? customer[i.target.host] : undefined;
          return { reference: i.img.reference, ...(c?.user ? { auth: { username: c.user, password: c.password!, serverAddress: i.target.host } } : {}) };
        }),
      );
    // What operators use today: a shell step's `docker login` then `docker pull`, in sequence.
    const dockerConfig = path.join(work, `docker-config-${seq}`);
    mkdirSync(dockerConfig);
    const cliEnv = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home, DOCKER_HOST: info.dockerHost, DOCKER_CONFIG: dockerConfig };
    const cliPull = async (list: BenchImage[], login = true) => {
      const t0 = performance.now();
      if (login) {
        for (const t of [ghcr, ecr]) {
          const r = await run("docker", ["login", "-u", t.user!, "--password-stdin", t.host], cliEnv, t.password);
          if (r.code !== 0) throw new Error(`docker login failed: ${r.out}`);
        }
      }
      for (const i of list) {
        const r = await run("docker", ["pull", "-q", i.img.reference], cliEnv);
        if (r.code !== 0) throw new Error(`docker pull failed: ${r.out}`);
      }
      return performance.now() - t0;
    };

    // Warm the agent's compile cache and the engine once, outside the measurement.
    await removeImages(small);
    await agentBake(smallServices);

    // 1. Seven services, six images, cold.
    const cpu1: number[] = [];
    if (ONLY.has("small")) {
      const t1 = await interleaved(`${engineName(engine)} bake 7/6 cold`, {
        "agent (slothbox-agent bake)": async () => {
          const ms = await agentBake(smallServices);
          cpu1.push(lastCpu);
          return ms;
        },
        "limit (6 pulls at once, Engine API)": () => limitPull(small),
        "docker CLI (login + pull, sequential)": () => cliPull(small),
      }, () => removeImages(small));
      const t1target = engine.store === "classic" ? 1.2 : 1.3;
      results.push({
        name: `1. Bake of 7 services / 6 small images, cold — ${label}`,
        rows: [HEAD, ...rowsFor(t1, "limit (6 pulls at once, Engine API)")],
        notes: [
          `agent / limit = ${verdict(ratio(t1, "agent (slothbox-agent bake)", "limit (6 pulls at once, Engine API)"), t1target)}`,
          `agent / docker CLI = ${ratio(t1, "agent (slothbox-agent bake)", "docker CLI (login + pull, sequential)").toFixed(2)}`,
          `agent CPU per bake (user + sys, /proc): median ${summary(cpu1).median.toFixed(2)} s, min – max ${summary(cpu1).min.toFixed(2)} – ${summary(cpu1).max.toFixed(2)} s`,
        `both CPUs busy (/proc/stat, the engine, the registries, the bench and anything else on the machine) while the limit ran: median ${(100 * summary(busyShare[`${engineName(engine)} bake 7/6 cold limit (6 pulls at once, Engine API)`]!).median).toFixed(0)} %; while the agent ran: ${(100 * summary(busyShare[`${engineName(engine)} bake 7/6 cold agent (slothbox-agent bake)`]!).median).toFixed(0)} %`,
        ],
      });
      const r1 = ratio(t1, "agent (slothbox-agent bake)", "limit (6 pulls at once, Engine API)");
      target("Packer", "6 small images, cold CLI, vs the limit", engine, r1.toFixed(2), `≤ ${t1target.toFixed(2)}`, r1 <= t1target);
      const c1 = summary(cpu1).median;
      target("Packer", "agent CPU per cold 6-image bake", engine, `${c1.toFixed(2)} s`, "≤ 0.13 s", c1 <= 0.13);
    }

    // 2. One image: the agent's own cost against `docker pull` alone (already logged in).
    if (ONLY.has("one")) {
      const one = small[1]!;
      await cliPull([], true);
      const t2 = await interleaved(`${engineName(engine)} one image`, {
        "docker pull": () => cliPull([one], false),
        "limit (one pull, Engine API)": () => limitPull([one]),
        "agent (slothbox-agent bake)": () => agentBake([{ name: "one", image: one.img.reference, registryCredentialId: "rc_gh" }]),
      }, () => removeImages([one]));
      results.push({
        name: `2. One small image (token credential), agent vs \`docker pull\` — ${label}`,
        rows: [HEAD, ...rowsFor(t2, "docker pull")],
        notes: [`agent / docker pull = ${verdict(ratio(t2, "agent (slothbox-agent bake)", "docker pull"), engine.store === "classic" ? 1.35 : 1.55)}`],
      });
      const r2 = ratio(t2, "agent (slothbox-agent bake)", "docker pull");
      const t2target = engine.store === "classic" ? 1.35 : 1.55;
      target("Packer", "one image vs docker pull", engine, r2.toFixed(2), `≤ ${t2target.toFixed(2)}`, r2 <= t2target);

      // What starting a process costs, beside the one-image bake: Node, the agent, the Docker CLI.
      if (engine === ENGINES[0]) {
        const starts: Record<string, number[]> = { "node -e 0": [], "slothbox-agent --version": [], "docker --version": [] };
        for (let k = 0; k < 10; k++) {
          starts["node -e 0"]!.push((await run(process.execPath, ["-e", "0"], agentEnv)).ms);
          starts["slothbox-agent --version"]!.push((await run(process.execPath, [...CLI_NODE_ARGS, AGENT, "--version"], agentEnv)).ms);
          starts["docker --version"]!.push((await run("docker", ["--version"], cliEnv)).ms);
        }
        results.push({ name: "Start-up of a process (10 runs each)", rows: [HEAD, ...rowsFor(starts, "node -e 0")], notes: [] });
      }
    }

    // 3. Three large images.
    if (ONLY.has("large")) {
      const cpu3: number[] = [];
      const t3 = await interleaved(`${engineName(engine)} large`, {
        "agent (slothbox-agent bake)": async () => {
          const ms = await agentBake(servicesOf(large));
          cpu3.push(lastCpu);
          return ms;
        },
        "limit (3 pulls at once, Engine API)": () => limitPull(large),
      }, () => removeImages(large));
      await removeImages(large);
      results.push({
        name: `3. Bake of 3 large images (110, 150, 200 MB; 8, 10, 12 layers), cold — ${label}`,
        rows: [HEAD, ...rowsFor(t3, "limit (3 pulls at once, Engine API)")],
        notes: [
          `agent / limit = ${verdict(ratio(t3, "agent (slothbox-agent bake)", "limit (3 pulls at once, Engine API)"), 1.05)}`,
          `agent CPU per bake (user + sys, /proc): median ${summary(cpu3).median.toFixed(2)} s; both CPUs busy while the limit ran: median ${(100 * summary(busyShare[`${engineName(engine)} large limit (3 pulls at once, Engine API)`]!).median).toFixed(0)} %`,
        ],
      });
      const r3 = ratio(t3, "agent (slothbox-agent bake)", "limit (3 pulls at once, Engine API)");
      target("Packer", "3 large images vs the limit", engine, r3.toFixed(2), "≤ 1.05", r3 <= 1.05);
    }

    // 4. Warm bake: every image present and pinned, nothing pulled.
    if (ONLY.has("warm")) {
      await limitPull(small);
      const pinned = small.map((i, n) => ({
        name: `svc${n}`,
        image: `${i.img.reference.replace(/:1$/, "")}@${i.img.digest}`,
        ...(i.cred ? { registryCredentialId: i.cred } : { catalog: true }),
      }));
      const warm: number[] = [];
      for (let k = 0; k < Math.max(ROUNDS, 10); k++) warm.push(await agentBake(pinned));
      const w = summary(warm);
      results.push({
        name: `4. Warm bake, 6 pinned images present — ${label}`,
        rows: [["run", "median", "min – max", "p90"], ["agent bake (warm)", fmtMs(w.median), `${fmtMs(w.min)} – ${fmtMs(w.max)}`, fmtMs(percentile(warm, 90))]],
        notes: [`median ${fmtMs(w.median)} (target ≤ 250 ms: ${w.median <= 250 ? "met" : "missed"})`],
      });
      await removeImages(small);
    }

    // 4a. Signed images only (issue 30): one signed image with and without a policy, cold and warm.
    if (ONLY.has("signed")) {
      const s = await signedBench({
        docker,
        target: T.quay,
        dockerHost: info.dockerHost,
        hostsFile: path.join(info.dir, `e${ENGINES.indexOf(engine)}`, "hosts"),
        work,
        env: agentEnv,
        rounds: ROUNDS,
        nodeArgs: CLI_NODE_ARGS,
        run: async (argv, env) => {
          const cpu0 = childrenCpu();
          const r = await run(argv[0]!, argv.slice(1), env);
          return { ...r, cpu: childrenCpu() - cpu0 };
        },
        log: (line) => process.stderr.write(line + "\n"),
      });
      results.push({
        name: `4a. One signed image (5 MB, 3 layers), pinned by digest, with and without a signature policy — ${label}`,
        rows: s.rows,
        notes: [
          "cold: the image not in Docker and, with a policy, no verification in <stateDir>/verifications/; warm: the image present and, with a policy, its verification reused from the state dir (pinned: a tag is verified again on every bake, its digest being known only then)",
          "verification's share: the policy's median less the same case's without one; agent CPU is the reaped child's user + sys from /proc (10 ms ticks), the hosts-file wrapper (unshare, sh, two mounts) included in every case alike",
          ...s.notes,
        ],
      });
    }

    // 5. The live box: the daemon as the unit runs it.
    const live: LiveBox = {
      stack: info,
      aws,
      work,
      agent: AGENT,
      env: agentEnv,
      docker,
      target: T.quay,
      services: smallServices,
      credentials: creds,
      limitPull: () => limitPull(small),
      removeImages: () => removeImages(small),
      rounds: ROUNDS,
      nodeArgs: DAEMON_NODE_ARGS,
      daemonEnv: DAEMON_ENV,
    };
    const tried = [...DAEMON_NODE_ARGS, ...Object.entries(DAEMON_ENV).map(([k, v]) => `${k}=${v}`)];
    const flags = tried.length ? ` (${tried.join(" ")})` : "";
    if (ONLY.has("api")) {
      const a = await warmApiBake(live);
      const agentName = "agent daemon (POST /v1/bakes)";
      const limitName = "limit (6 pulls at once, Engine API)";
      const ra = ratio(a.times, agentName, limitName);
      const cpu = summary(a.cpu);
      results.push({
        name: `5. Warm API bake, 6 small images cold in Docker, on a running daemon${flags} — ${label}`,
        rows: [HEAD, ...rowsFor(a.times, limitName)],
        notes: [
          `daemon / limit = ${verdict(ra, 1.1)}`,
          `daemon CPU per bake (user + sys, /proc): median ${cpu.median.toFixed(2)} s, min – max ${cpu.min.toFixed(2)} – ${cpu.max.toFixed(2)} s; RSS after the rounds ${a.rss.toFixed(1)} MB`,
          `time of the API bake outside its longest pull (POST to the end, less the longest service's durationMs): median ${fmtMs(summary(a.outside).median)}`,
        ],
      });
      target("live box", "warm API bake (6 small images) vs the limit", engine, ra.toFixed(2), "≤ 1.10", ra <= 1.1);
      target("live box", "daemon CPU per warm API bake (no target)", engine, `${cpu.median.toFixed(2)} s`, "—", undefined);
    }
    if (engine === ENGINES[0] && ONLY.has("rss")) {
      const floor = await nodeFloor(live);
      // BENCH_RSS_CACHE=warm: the unit's case only (one scenario instead of two, when iterating).
      const warm = await steadyStateRss(live, true);
      const cold = process.env["BENCH_RSS_CACHE"] === "warm" ? warm : await steadyStateRss(live, false);
      const row = (what: string, k: "afterStart" | "afterReady" | "afterBake" | "steady") => [what, `${cold[k].toFixed(1)} MB`, `${warm[k].toFixed(1)} MB`];
      results.push({
        name: `6. Daemon RSS, steady state${flags} (start-up reconcile, /readyz every 10 s for 60 s, one API bake of the 6 small images, idle 30 s) — ${label}`,
        rows: [
          ["measure", "compile cache empty at start (PrivateTmp=yes)", "compile cache kept (CacheDirectory=)"],
          row("RSS after start-up reconcile", "afterStart"),
          row("RSS after the first /readyz (AWS SDK loaded)", "afterReady"),
          row("RSS right after the API bake", "afterBake"),
          row("RSS in steady state (idle 30 s after the bake)", "steady"),
          ["of which anonymous / file-backed", `${cold.anon.toFixed(1)} / ${cold.file.toFixed(1)} MB`, `${warm.anon.toFixed(1)} / ${warm.file.toFixed(1)} MB`],
          ...(
            [
              ["V8 heap, total (used)", (h) => `${h.total.toFixed(1)} (${h.used.toFixed(1)}) MB`],
              ["V8 heap spaces: new / old / code", (h) => `${h.newSpace.toFixed(1)} / ${h.oldSpace.toFixed(1)} / ${h.code.toFixed(1)} MB`],
              ["external memory (buffers)", (h) => `${h.external.toFixed(1)} MB`],
            ] as [string, (h: typeof cold.heap) => string][]
          ).map(([what, f]) => [what, f(cold.heap), f(warm.heap)]),
          ["Node's floor: HTTP server, unix-socket request, a POST, fs.watch, no library (2 s after start)", `${floor.toFixed(1)} MB`, ""],
        ],
        notes: [],
      });
      target("live box", "daemon RSS in steady state, compile cache kept (CacheDirectory=)", engine, `${warm.steady.toFixed(1)} MB`, "≤ 60 MB", warm.steady <= 60);
      target("live box", "daemon RSS in steady state, compile cache empty at start", engine, `${cold.steady.toFixed(1)} MB`, "≤ 60 MB", cold.steady <= 60);
    }
    if (engine === ENGINES[0] && ONLY.has("healthz")) {
      const h = await healthzUnderLoad(live);
      const p99 = percentile(h.lat, 99);
      results.push({
        name: `7. /healthz at 200 req/s for 20 s while one-image API bakes run back to back; a 200 MB pull${flags} — ${label}`,
        rows: [
          ["measure", "value"],
          [`/healthz p50 (${h.lat.length} requests, ${h.bakes} bakes during the load)`, `${percentile(h.lat, 50).toFixed(2)} ms`],
          ["/healthz p99", `${p99.toFixed(2)} ms`],
          ["/healthz max", `${Math.max(...h.lat).toFixed(2)} ms`],
          ["control: a bare Node HTTP server asked on the same schedule, p50 / p99 / max", `${percentile(h.floorLat, 50).toFixed(2)} / ${percentile(h.floorLat, 99).toFixed(2)} / ${Math.max(...h.floorLat).toFixed(2)} ms`],
          ["the daemon's longest event-loop delay over the load (prom-client)", `${h.lag.max.toFixed(2)} ms`],
          [`RSS growth pulling ${h.big.mb.toFixed(0)} MB (${fmtMs(h.big.ms)})`, `${(h.big.peak - h.big.before).toFixed(1)} MB (from ${h.big.before.toFixed(1)} to peak ${h.big.peak.toFixed(1)})`],
          [`daemon CPU pulling ${h.big.mb.toFixed(0)} MB`, `${h.big.cpu.toFixed(2)} s`],
        ],
        notes: [],
      });
      target("live box", "/healthz p99 while bakes run back to back", engine, `${p99.toFixed(2)} ms`, "≤ 5 ms", p99 <= 5);
      target("live box", "control: bare Node server's p99 on the same schedule (no target)", engine, `${percentile(h.floorLat, 99).toFixed(2)} ms`, "—", undefined);
    }
  }
} finally {
  await aws.stop();
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
}

const dockerd = (e: Engine) => `${engineName(e)} (${e.store} store${e.store === "classic" ? ", vfs" : ", overlayfs snapshotter"})`;
const machine = [
  `- CPU: ${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}; memory ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
  `- Node ${process.version}; Docker CLI ${execFileSync("docker", ["--version"], { encoding: "utf8" }).trim()}; dockerd ${ENGINES.map(dockerd).join(" and ")}`,
  `- ${ROUNDS} interleaved rounds per comparison; date ${new Date().toISOString().slice(0, 10)}; sections ${[...ONLY].join(", ")}`,
  `- load average (1, 5, 15 min) at the start ${LOAD_START}, at the end ${os.loadavg().map((x) => x.toFixed(2)).join(", ")} (other work on the machine moves wall-clock ratios; CPU and RSS much less)`,
];
const text = `### Targets (issue 26), this run\n\n${table(targets)}\n\n` + results.map((r) => `### ${r.name}\n\n${table(r.rows)}\n${r.notes.map((n) => `\n${n}`).join("")}\n`).join("\n");
console.log("\n" + machine.join("\n") + "\n\n" + text);
// A partial run (BENCH_ONLY, one engine) is printed, and written to BENCH_OUT if set, but not to the docs.
const partial = process.env["BENCH_ONLY"] !== undefined || process.env["BENCH_ENGINES"] !== undefined || REGISTRY_LATENCY_MS > 0;
if (process.env["BENCH_OUT"]) writeFileSync(process.env["BENCH_OUT"], machine.join("\n") + "\n\n" + text);
const doc = partial ? "/dev/null" : path.join(ROOT, "docs/benchmarks.md");
const old = (() => {
  try {
    return readFileSync(doc, "utf8");
  } catch {
    return "";
  }
})();
const marker = "<!-- bench:results -->";
const head = old.includes(marker) ? old.slice(0, old.indexOf(marker)) : "# Benchmarks\n\n";
writeFileSync(doc, `${head}${marker}\n## Latest run\n\n${machine.join("\n")}\n\n${text}`);
if (!partial) console.log(`\nwritten to ${path.relative(ROOT, doc)}`);
