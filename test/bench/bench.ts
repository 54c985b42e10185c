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
import { fmtMs, percentile, summary, table } from "./stats.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const AGENT = path.join(ROOT, "dist/slothbox-agent.mjs");
const PREFIX = "/slothbox/registry-credentials/";
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 5);
const MB = 1_000_000;
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
      times[n]!.push(await contenders[n]!());
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

const stack = await startStack({ engines: ENGINES });
const aws = new AwsStandIn();
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-bench-"));
const results: Result[] = [];
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
  await push(large, T.ghcr, "bench/large-api", layersOf(8, 110 * MB), "rc_gh");
  await push(large, T.ecr, "bench/large-worker", layersOf(10, 150 * MB), "rc_ecr");
  await push(large, T.quay, "bench/large-ml", layersOf(12, 200 * MB));

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
    const agentBake = async (svcs: unknown[], env: Record<string, string> = {}) => {
      const r = await run(process.execPath, [AGENT, "bake", "--spec", writeSpec(svcs), "--config", configFile, "--no-report"], { ...agentEnv, ...env });
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
    const t1 = await interleaved(`${engineName(engine)} bake 7/6 cold`, {
      "agent (slothbox-agent bake)": () => agentBake(smallServices),
      "limit (6 pulls at once, Engine API)": () => limitPull(small),
      "docker CLI (login + pull, sequential)": () => cliPull(small),
    }, () => removeImages(small));
    results.push({
      name: `1. Bake of 7 services / 6 small images, cold — ${label}`,
      rows: [HEAD, ...rowsFor(t1, "limit (6 pulls at once, Engine API)")],
      notes: [
        `agent / limit = ${verdict(ratio(t1, "agent (slothbox-agent bake)", "limit (6 pulls at once, Engine API)"), 1.1)}`,
        `agent / docker CLI = ${ratio(t1, "agent (slothbox-agent bake)", "docker CLI (login + pull, sequential)").toFixed(2)}`,
      ],
    });

    // 2. One image: the agent's own cost against `docker pull` alone (already logged in).
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
      notes: [`agent / docker pull = ${verdict(ratio(t2, "agent (slothbox-agent bake)", "docker pull"), 1.15)}`],
    });

    // What starting a process costs, beside the one-image bake: Node, the agent, the Docker CLI.
    if (engine === ENGINES[0]) {
      const starts: Record<string, number[]> = { "node -e 0": [], "slothbox-agent --version": [], "docker --version": [] };
      for (let k = 0; k < 10; k++) {
        starts["node -e 0"]!.push((await run(process.execPath, ["-e", "0"], agentEnv)).ms);
        starts["slothbox-agent --version"]!.push((await run(process.execPath, [AGENT, "--version"], agentEnv)).ms);
        starts["docker --version"]!.push((await run("docker", ["--version"], cliEnv)).ms);
      }
      results.push({ name: "Start-up of a process (10 runs each)", rows: [HEAD, ...rowsFor(starts, "node -e 0")], notes: [] });
    }

    // 3. Three large images.
    const t3 = await interleaved(`${engineName(engine)} large`, {
      "agent (slothbox-agent bake)": () => agentBake(servicesOf(large)),
      "limit (3 pulls at once, Engine API)": () => limitPull(large),
    }, () => removeImages(large));
    await removeImages(large);
    results.push({
      name: `3. Bake of 3 large images (110, 150, 200 MB; 8, 10, 12 layers), cold — ${label}`,
      rows: [HEAD, ...rowsFor(t3, "limit (3 pulls at once, Engine API)")],
      notes: [`agent / limit = ${verdict(ratio(t3, "agent (slothbox-agent bake)", "limit (3 pulls at once, Engine API)"), 1.05)}`],
    });

    // 4. Warm bake: every image present and pinned, nothing pulled.
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

    // 5. The daemon, on the first engine.
    if (engine === ENGINES[0]) {
      const { daemonBench } = await import("./daemon-bench.ts");
      const d = await daemonBench({ stack: info, aws, work, agent: AGENT, env: agentEnv, docker, target: T.quay });
      results.push({ ...d, name: `5. ${d.name} — ${label}` });
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
  `- ${ROUNDS} interleaved rounds per comparison; date ${new Date().toISOString().slice(0, 10)}`,
];
const text = results.map((r) => `### ${r.name}\n\n${table(r.rows)}\n${r.notes.map((n) => `\n${n}`).join("")}\n`).join("\n");
console.log("\n" + machine.join("\n") + "\n\n" + text);
const doc = path.join(ROOT, "docs/benchmarks.md");
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
console.log(`\nwritten to ${path.relative(ROOT, doc)}`);
