// `npm run bench`: the agent against the engine's own limit and against what
// operators use today, on the local stack, interleaved round by round (these
// machines are noisy), medians with min–max and ratios. Writes docs/benchmarks.md.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Docker from "dockerode";
import { encodeRegistryAuth } from "../../agent/docker/auth-header.ts";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { pushImage, randomLayer, type Layer, type PushedImage, type RegistryTarget } from "../stack/images.ts";
import { ECR_ACCOUNT, startStack } from "../stack/stack.ts";
import { fmtMs, percentile, summary, table } from "./stats.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const AGENT = path.join(ROOT, "dist/slothbox-agent.mjs");
const PREFIX = "/slothbox/registry-credentials/";
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 5);
const MB = 1_000_000;

if (process.getuid?.() !== 0) {
  console.error("npm run bench starts its own dockerd and needs root.");
  process.exit(2);
}

const stack = await startStack();
const aws = await new AwsStandIn().start();
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-bench-"));
const docker = new Docker({ socketPath: stack.info.socketPath });
const { ghcr, ecr, quay } = stack.info.registries;
aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
const T = { ghcr: ghcr.push, ecr: ecr.push, quay: quay.push };
const results: { name: string; rows: string[][]; notes: string[] }[] = [];

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

function layersOf(n: number, total: number): Layer[] {
  return Array.from({ length: n }, () => randomLayer(Math.floor(total / n)));
}

async function removeImages(refs: string[]): Promise<void> {
  for (const r of refs) await docker.getImage(r).remove({ force: true }).catch(() => undefined);
  await docker.pruneImages({ filters: { dangling: { false: true } } }).catch(() => undefined);
}

// ---------- the images: 6 images, 3–4 layers, 4–8 MB, two sharing a base, on three registries
const base = randomLayer(2 * MB);
const images: { img: PushedImage; target: RegistryTarget; cred?: string }[] = [];
const push = async (target: RegistryTarget, repo: string, layers: Layer[], cred?: string) =>
  images.push({ img: await pushImage(target, repo, "1", layers), target, ...(cred ? { cred } : {}) });
await push(T.ghcr, "bench/api", [base, ...layersOf(2, 4 * MB)], "rc_gh");
await push(T.ghcr, "bench/web", [base, ...layersOf(3, 5 * MB)], "rc_gh");
await push(T.ecr, "bench/worker", layersOf(4, 8 * MB), "rc_ecr");
await push(T.ecr, "bench/jobs", layersOf(3, 6 * MB), "rc_ecr");
await push(T.quay, "bench/cache", layersOf(3, 4 * MB));
await push(T.quay, "bench/proxy", layersOf(4, 7 * MB));
const refs = images.map((i) => i.img.reference);
const creds = [
  { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" },
  { id: "rc_ecr", type: "ecr", registry: ecr.host },
];
const services = images.map((i, n) => ({ name: `svc${n}`, image: i.img.reference, ...(i.cred ? { registryCredentialId: i.cred } : { catalog: true }) }));
services.push({ name: "svc-shared", image: images[0]!.img.reference, registryCredentialId: "rc_gh" });

const stateDir = path.join(work, "state");
const configFile = path.join(work, "agent.json");
writeFileSync(configFile, JSON.stringify({ stateDir, dockerSocket: stack.info.dockerHost, awsRegion: "us-east-1", logLevel: "warn" }));
const home = path.join(work, "home");
mkdirSync(home);
const agentEnv = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home, ...aws.env() };
let seq = 0;
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

// The engine's limit: every image at once, straight through the Engine API, auth prepared.
const customer: Record<string, { user?: string; password?: string }> = { [ghcr.host]: ghcr, [ecr.host]: ecr };
const authFor = (i: (typeof images)[number]) => {
  const c = i.cred ? customer[i.target.host] : undefined;
  return c?.user ? encodeRegistryAuth({ username: c.user, password: c.password!, serverAddress: i.target.host }) : undefined;
};
async function limitPull(list: typeof images): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    list.map(async (i) => {
      const a = authFor(i);
      const opts = { fromImage: i.img.reference.replace(/:1$/, ""), tag: "1" };
      const s = (a ? await docker.createImage({ base64: a }, opts) : await docker.createImage(opts)) as NodeJS.ReadableStream;
      await new Promise<void>((resolve, reject) => docker.modem.followProgress(s, (e) => (e ? reject(e) : resolve())));
    }),
  );
  return performance.now() - t0;
}

// What operators use today: a shell step's `docker login` then `docker pull`, in sequence.
const dockerConfig = path.join(work, "docker-config");
mkdirSync(dockerConfig);
const cliEnv = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home, DOCKER_HOST: stack.info.dockerHost, DOCKER_CONFIG: dockerConfig };
async function cliPull(list: typeof images, login = true): Promise<number> {
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
}

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

try {
  // Warm the agent's compile cache and dockerd once, outside the measurement.
  await removeImages(refs);
  await agentBake(services);

  // 1. Seven services, six images, cold.
  const t1 = await interleaved("bake 7/6 cold", {
    "agent (slothbox-agent bake)": () => agentBake(services),
    "agent, pullConcurrency 6": () => agentBake(services, { SLOTHBOX_PULL_CONCURRENCY: "6" }),
    "limit (6 pulls at once, Engine API)": () => limitPull(images),
    "docker CLI (login + pull, sequential)": () => cliPull(images),
  }, () => removeImages(refs));
  const r1 = rowsFor(t1, "limit (6 pulls at once, Engine API)");
  const agentVsCli = summary(t1["agent (slothbox-agent bake)"]!).median / summary(t1["docker CLI (login + pull, sequential)"]!).median;
  results.push({
    name: "1. Bake of 7 services / 6 images, cold (target: agent / limit ≤ 1.10)",
    rows: [HEAD, ...r1],
    notes: [`agent / docker CLI = ${agentVsCli.toFixed(2)}`],
  });

  // 2. One image: the agent's own cost against `docker pull` alone (already logged in).
  const one = images[1]!;
  await cliPull([], true);
  const t2 = await interleaved("one image", {
    "docker pull": () => cliPull([one], false),
    "agent (slothbox-agent bake)": () => agentBake([{ name: "one", image: one.img.reference, registryCredentialId: "rc_gh" }]),
  }, () => removeImages([one.img.reference]));
  results.push({ name: "2. One image (token credential), agent vs `docker pull` (target ≤ 1.15)", rows: [HEAD, ...rowsFor(t2, "docker pull")], notes: [] });

  // 3. Warm bake: every image present and pinned, nothing pulled.
  await limitPull(images);
  const pinned = images.map((i, n) => ({
    name: `svc${n}`,
    image: `${i.img.reference.replace(/:1$/, "")}@${i.img.digest}`,
    ...(i.cred ? { registryCredentialId: i.cred } : { catalog: true }),
  }));
  const warm: number[] = [];
  for (let k = 0; k < Math.max(ROUNDS, 10); k++) warm.push(await agentBake(pinned));
  const w = summary(warm);
  results.push({
    name: "3. Warm bake, 6 pinned images present (target ≤ 250 ms)",
    rows: [["run", "median", "min – max", "p90"], ["agent bake (warm)", fmtMs(w.median), `${fmtMs(w.min)} – ${fmtMs(w.max)}`, fmtMs(percentile(warm, 90))]],
    notes: [],
  });

  // 4. The daemon.
  const { daemonBench } = await import("./daemon-bench.ts");
  results.push(await daemonBench({ stack: stack.info, aws, work, agent: AGENT, env: agentEnv, docker, target: T.quay }));
} finally {
  await aws.stop();
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
}

const machine = [
  `- CPU: ${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}; memory ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
  `- Node ${process.version}; dockerd ${execFileSync("dockerd", ["--version"], { encoding: "utf8" }).trim()}; storage driver vfs`,
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
