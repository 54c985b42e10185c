// `npm run bench:concurrency`: the measurement behind the default pullConcurrency
// (SPEC §4). Cold bakes of 6 and of 20 images, small (4–8 MB, 3–4 layers) and
// large (6 and 20 images of 60–100 MB, 6–8 layers), on dockerd 20.10 (classic
// store) and 28.5 (containerd store), at each pullConcurrency, interleaved round
// by round, against the engine's limit (every image at once through the Engine
// API, auth prepared). Images are removed before every run. Writes the table into
// docs/benchmarks.md between its concurrency markers.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Docker from "dockerode";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { engineFromEnv, engineName, type Engine } from "../stack/dockerd.ts";
import { pushImage, randomLayer, type Layer, type PushedImage } from "../stack/images.ts";
import { startStack } from "../stack/stack.ts";
import { pullAllAtOnce, removeImages } from "./engine.ts";
import { fmtMs, summary, table } from "./stats.ts";
import { setLatency } from "../stack/registry-front.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const AGENT = path.join(ROOT, "dist/slothbox-agent.mjs");
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3);
const LEVELS = (process.env["BENCH_CONCURRENCY"] ?? "1,2,3,4,6,10,20").split(",").map(Number);
const MB = 1_000_000;
/** Milliseconds each registry request waits in the stack's registry fronts (registries across a network); the table is then printed, the page left alone. */
const REGISTRY_LATENCY_MS = Number(process.env["BENCH_REGISTRY_LATENCY_MS"] ?? 0);
const ENGINES: Engine[] = (process.env["BENCH_ENGINES"] ?? "20.10,28.5-containerd").split(",").map((n) => engineFromEnv({ SLOTHBOX_TEST_ENGINE: n }));

if (process.getuid?.() !== 0) {
  console.error("npm run bench:concurrency starts its own dockerd and needs root.");
  process.exit(2);
}

const stack = await startStack({ engines: ENGINES });
const aws = new AwsStandIn();
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-conc-"));
const { ghcr, quay } = stack.info.registries;

const layers = (n: number, total: number): Layer[] => Array.from({ length: n }, () => randomLayer(Math.floor(total / n)));
/** Half on GHCR (token credential through SSM), half on Quay (anonymous). */
async function imageSet(name: string, count: number, make: (i: number) => Layer[]): Promise<{ name: string; images: { img: PushedImage; cred: boolean }[] }> {
  const images = [];
  for (let i = 0; i < count; i++) {
    const cred = i % 2 === 0;
    images.push({ img: await pushImage(cred ? ghcr.push : quay.push, `bench/conc-${name.replace(" ", "-")}-${i}`, "1", make(i)), cred });
  }
  return { name, images };
}
const configFile = path.join(work, "agent.json");
const home = path.join(work, "home");
mkdirSync(home);

function run(args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => (out += c.toString()));
    p.stderr.on("data", (c: Buffer) => (out += c.toString()));
    p.on("exit", (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`agent bake failed:\n${out}`))));
  });
}

const rows: string[][] = [["engine", "images", ...LEVELS.map((l) => `pullConcurrency ${l}`), "limit (all at once)"]];
const best: string[] = [];
try {
  await aws.start();
  aws.putParameter("/slothbox/registry-credentials/rc_gh", ghcr.password!);
  process.stderr.write("pushing images…\n");
  const sets = [
    await imageSet("6 small", 6, (i) => layers(3 + (i % 2), (4 + i) * MB)),
    await imageSet("20 small", 20, (i) => layers(3 + (i % 2), (4 + (i % 5)) * MB)),
    await imageSet("6 large", 6, (i) => layers(8, (80 + 4 * i) * MB)),
    await imageSet("20 large", 20, (i) => layers(6, (60 + 2 * (i % 5)) * MB)),
  ];
  if (REGISTRY_LATENCY_MS > 0) for (const r of [ghcr, quay]) await setLatency(r.control, REGISTRY_LATENCY_MS);
  for (const engine of ENGINES) {
    const info = stack.infoFor(engine);
    const docker = new Docker({ socketPath: info.socketPath });
    writeFileSync(configFile, JSON.stringify({ stateDir: path.join(work, "state"), dockerSocket: info.dockerHost, awsRegion: "us-east-1", logLevel: "warn" }));
    const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home, ...aws.env() };
    const clear = (refs: string[]) => removeImages(docker, refs);
    for (const set of sets) {
      const refs = set.images.map((i) => i.img.reference);
      const spec = path.join(work, "spec.json");
      writeFileSync(
        spec,
        JSON.stringify({
          bakeId: "bk_conc",
          orgId: "o",
          registryCredentials: [{ id: "rc_gh", type: "token", registry: "ghcr.io", username: ghcr.user }],
          services: set.images.map((i, n) => ({ name: `s${n}`, image: i.img.reference, ...(i.cred ? { registryCredentialId: "rc_gh" } : {}) })),
        }),
      );
      const limit = () =>
        pullAllAtOnce(
          docker,
          set.images.map(({ img, cred }) => ({
            reference: img.reference,
            ...(cred ? { auth: { username: ghcr.user!, password: ghcr.password!, serverAddress: "ghcr.io" } } : {}),
          })),
        );
      const contenders: [string, () => Promise<number>][] = [
        ...LEVELS.filter((l) => l <= set.images.length).map((l) => [`${l}`, () => run([AGENT, "bake", "--spec", spec, "--config", configFile, "--no-report"], { ...env, SLOTHBOX_PULL_CONCURRENCY: String(l) })] as [string, () => Promise<number>]),
        ["limit", limit],
      ];
      const times = new Map<string, number[]>(contenders.map(([n]) => [n, []]));
      await clear(refs);
      await contenders[0]![1]();
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < contenders.length; k++) {
          const [n, f] = contenders[(k + round) % contenders.length]!;
          await clear(refs);
          times.get(n)!.push(await f());
        }
        process.stderr.write(`${engineName(engine)} ${set.name}: round ${round + 1}/${ROUNDS} ${[...times].map(([n, xs]) => `${n} ${fmtMs(xs.at(-1)!)}`).join(", ")}\n`);
      }
      await clear(refs);
      const lim = summary(times.get("limit")!).median;
      const cell = (n: string) => {
        const xs = times.get(n);
        return xs ? `${fmtMs(summary(xs).median)} (${(summary(xs).median / lim).toFixed(2)})` : "—";
      };
      rows.push([engineName(engine), set.name, ...LEVELS.map((l) => cell(String(l))), fmtMs(lim)]);
      const fastest = [...times].filter(([n]) => n !== "limit").sort((a, b) => summary(a[1]).median - summary(b[1]).median)[0]!;
      best.push(`${engineName(engine)}, ${set.name}: fastest at pullConcurrency ${fastest[0]}`);
    }
  }
} finally {
  await aws.stop();
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
}

const text = [
  `${ROUNDS} interleaved rounds; median bake time (ratio to the engine's limit); ${os.cpus().length} CPUs; ${new Date().toISOString().slice(0, 10)}`,
  "",
  table(rows),
  "",
  ...best.map((b) => `- ${b}`),
].join("\n");
console.log("\n" + (REGISTRY_LATENCY_MS > 0 ? `registry latency ${REGISTRY_LATENCY_MS} ms per request\n` : "") + text);
if (REGISTRY_LATENCY_MS > 0) process.exit(0);
const doc = path.join(ROOT, "docs/benchmarks.md");
const old = readFileSync(doc, "utf8");
const [start, end] = ["<!-- concurrency:results -->", "<!-- /concurrency:results -->"];
const block = `${start}\n${text}\n${end}`;
// Above `npm run bench`'s own results, which it rewrites from its marker to the end.
const benchMarker = "<!-- bench:results -->";
writeFileSync(
  doc,
  old.includes(start)
    ? old.slice(0, old.indexOf(start)) + block + old.slice(old.indexOf(end) + end.length)
    : old.replace(benchMarker, `${block}\n\n${benchMarker}`),
);
console.log(`\nwritten to ${path.relative(ROOT, doc)}`);
