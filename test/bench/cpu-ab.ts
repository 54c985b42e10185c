// A/B of the agent's own CPU per cold 6-image bake (the Packer path), for trying
// one change at a time: each variant is a bundle, Node flags and environment,
// run interleaved round by round on one engine; CPU (user + sys of the child,
// from /proc) is what load on the machine barely moves, the wall time beside it
// is for information. Also counts the IMDS requests of each bake.
//
//   node test/bench/cpu-ab.ts '{"name":"base"}' '{"name":"region","env":{"AWS_REGION":"us-east-1"}}' \
//     '{"name":"no keepNames","agent":"dist-nokeep/slothbox-agent.mjs"}' '{"name":"cold cache","coldCache":true}'
//
// BENCH_ROUNDS (default 8), BENCH_ENGINES (first one used, default 20.10). The
// agent's config sets no awsRegion, as a Packer build's agent.json does not.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Docker from "dockerode";
import { build } from "esbuild";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { engineFromEnv } from "../stack/dockerd.ts";
import { pushImage, randomLayer, type Layer } from "../stack/images.ts";
import { ECR_ACCOUNT, startStack } from "../stack/stack.ts";
import { encodeRegistryAuth } from "../../agent/docker/auth-header.ts";
import { removeImages } from "./engine.ts";
import { fmtMs, summary, table } from "./stats.ts";
import { tracingSocket, type EngineTrace } from "./engine-trace.ts";
import { bundleOptions } from "../../scripts/bundle-options.mjs";

interface Variant {
  name: string;
  agent?: string;
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** An empty compile cache for every run (a fresh box, or PrivateTmp=yes). */
  coldCache?: boolean;
  /**
   * Not a bake: Node with the agent's own AWS SDK chunk, the credential chain to
   * IMDS and one SSM GetParameter beside one ECR GetAuthorizationToken, as a bake
   * makes them, then exit. What a credentialed bake costs before any Docker work.
   */
  awsFloor?: boolean;
  /** Not a bake: `node -e 0`, Node's own start and exit. */
  nodeOnly?: boolean;
  /** Not a bake: Node with dockerode (bundled as the agent bundles it), the six pulls at once with their auth prepared, progress followed; no AWS. */
  dockerFloor?: boolean;
  /** The bake's Engine API requests through a tracing socket, printed with their times from the spawn for the last round (the relay adds its own latency). */
  trace?: boolean;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 8);
const MB = 1_000_000;
const variants = process.argv.slice(2).map((a) => JSON.parse(a) as Variant);
if (variants.length === 0) variants.push({ name: "base" });
const engine = engineFromEnv({ SLOTHBOX_TEST_ENGINE: (process.env["BENCH_ENGINES"] ?? "20.10").split(",")[0]! });

function childrenCpu(): number {
  const f = readFileSync("/proc/self/stat", "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(f[13]) + Number(f[14])) / 100;
}

const stack = await startStack({ engines: [engine] });
const aws = new AwsStandIn();
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-cpu-ab-"));
let trace: EngineTrace | undefined;
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => void Promise.allSettled([aws.stop(), stack.stop()]).then(() => process.exit(130)));
try {
  await aws.start();
  const { ghcr, ecr, quay } = stack.info.registries;
  aws.putParameter("/slothbox/registry-credentials/rc_gh", ghcr.password!);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
  const layersOf = (n: number, total: number): Layer[] => Array.from({ length: n }, () => randomLayer(Math.floor(total / n)));
  const base = randomLayer(2 * MB);
  const imgs = [
    { img: await pushImage(ghcr.push, "bench/api", "1", [base, ...layersOf(2, 4 * MB)]), cred: "rc_gh" },
    { img: await pushImage(ghcr.push, "bench/web", "1", [base, ...layersOf(3, 5 * MB)]), cred: "rc_gh" },
    { img: await pushImage(ecr.push, "bench/worker", "1", layersOf(4, 8 * MB)), cred: "rc_ecr" },
    { img: await pushImage(ecr.push, "bench/jobs", "1", layersOf(3, 6 * MB)), cred: "rc_ecr" },
    { img: await pushImage(quay.push, "bench/cache", "1", layersOf(3, 4 * MB)) },
    { img: await pushImage(quay.push, "bench/proxy", "1", layersOf(4, 7 * MB)) },
  ];
  const services = [
    ...imgs.map((i, n) => ({ name: `svc${n}`, image: i.img.reference, ...(i.cred ? { registryCredentialId: i.cred } : { catalog: true }) })),
    { name: "svc-shared", image: imgs[0]!.img.reference, registryCredentialId: "rc_gh" },
  ];
  const spec = path.join(work, "spec.json");
  writeFileSync(
    spec,
    JSON.stringify({
      bakeId: "bk_ab",
      orgId: "org_bench",
      registryCredentials: [
        { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" },
        { id: "rc_ecr", type: "ecr", registry: ecr.host },
      ],
      services,
    }),
  );
  const info = stack.infoFor(engine);
  const docker = new Docker({ socketPath: info.socketPath });
  const home = path.join(work, "home");
  mkdirSync(home);
  const warmCache = path.join(work, "cache-warm");
  const sdkChunk = readdirSync(path.join(ROOT, "dist/chunks")).find((f) => /^aws-sdk-.*\.mjs$/.test(f))!;
  const dockerFloorScript = path.join(work, "docker-floor.mjs");
  const auths: Record<string, { user?: string; password?: string; host: string }> = { rc_gh: { ...ghcr, host: ghcr.host }, rc_ecr: { ...ecr, host: ecr.host } };
  const pulls = imgs.map((i) => {
    const a = i.cred ? auths[i.cred]! : undefined;
    return { fromImage: i.img.reference.replace(/:1$/, ""), auth: a ? encodeRegistryAuth({ username: a.user!, password: a.password!, serverAddress: a.host }) : undefined };
  });
  // Bundled as the agent is (scripts/bundle-options.mjs): from node_modules, dockerode would
  // load ssh2 and gRPC, which the agent's bundle leaves out (~70 ms of CPU more, measured).
  if (variants.some((v) => v.dockerFloor)) {
    const dockerFloorSource = path.join(work, "docker-floor-source.mjs");
    writeFileSync(
      dockerFloorSource,
      [
        `import Docker from "dockerode";`,
        `const docker = new Docker({ socketPath: ${JSON.stringify(info.socketPath)} });`,
        `const pulls = ${JSON.stringify(pulls)};`,
        `await Promise.all(pulls.map(async (p) => {`,
        `  const s = await docker.createImage(p.auth ? { base64: p.auth } : {}, { fromImage: p.fromImage, tag: "1" });`,
        `  await new Promise((resolve, reject) => docker.modem.followProgress(s, (e) => (e ? reject(e) : resolve())));`,
        `}));`,
      ].join("\n"),
    );
    await build({ ...bundleOptions, entryPoints: [dockerFloorSource], outfile: path.join(work, "docker-floor-bundle.mjs"), nodePaths: [path.join(ROOT, "node_modules")] });
    writeFileSync(dockerFloorScript, [`import module from "node:module";`, `module.enableCompileCache?.();`, `await import("./docker-floor-bundle.mjs");`].join("\n"));
  }
  const floorScript = path.join(work, "aws-floor.mjs");
  writeFileSync(
    floorScript,
    [
      `import module from "node:module";`,
      `module.enableCompileCache?.();`,
      `const m = await import(${JSON.stringify(path.join(ROOT, "dist/chunks", sdkChunk))});`,
      `const credentials = m.fromNodeProviderChain();`,
      `await credentials();`,
      `const ssm = new m.SSMClient({ region: "us-east-1", credentials });`,
      `const ecr = new m.ECRClient({ region: "us-east-1", credentials });`,
      `await Promise.all([`,
      `  ssm.send(new m.GetParameterCommand({ Name: "/slothbox/registry-credentials/rc_gh", WithDecryption: true })),`,
      `  ecr.send(new m.GetAuthorizationTokenCommand({ registryIds: [${JSON.stringify(ECR_ACCOUNT)}] })),`,
      `]);`,
    ].join("\n"),
  );
  let seq = 0;
  if (variants.some((v) => v.trace)) trace = tracingSocket(info.socketPath, work);
  const bake = async (v: Variant, last = false) => {
    const config = path.join(work, `agent-${seq}.json`);
    const dockerSocket = v.trace && trace ? trace.dockerHost : info.dockerHost;
    writeFileSync(config, JSON.stringify({ stateDir: path.join(work, `state-${seq++}`), dockerSocket, logLevel: "warn" }));
    const traced = trace?.lines.length ?? 0;
    const cache = v.coldCache ? mkdtempSync(path.join(work, "cache-cold-")) : warmCache;
    const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home, NODE_COMPILE_CACHE: cache, ...aws.env(), ...v.env };
    const agent = path.resolve(ROOT, v.agent ?? "dist/slothbox-agent.mjs");
    const imds0 = aws.calls.filter((c) => c.api === "imds").length;
    const cpu0 = childrenCpu();
    const t0 = performance.now();
    const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const args = v.nodeOnly ? ["-e", "0"] : v.awsFloor ? [floorScript] : v.dockerFloor ? [dockerFloorScript] : [agent, "bake", "--spec", spec, "--config", config, "--no-report"];
      const p = spawn(process.execPath, [...(v.nodeArgs ?? []), ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
      let text = "";
      p.stdout.on("data", (c: Buffer) => (text += c.toString()));
      p.stderr.on("data", (c: Buffer) => (text += c.toString()));
      p.on("exit", (code) => resolve({ code, text }));
    });
    const ms = performance.now() - t0;
    const cpu = childrenCpu() - cpu0;
    if (out.code !== 0) throw new Error(`${v.name}: bake failed:\n${out.text}`);
    if (v.trace && trace && last) {
      process.stderr.write(`${v.name}: engine requests (${fmtMs(ms)} in all), from the spawn:\n${trace.since(traced, t0)}\n`);
    }
    if (v.coldCache) rmSync(cache, { recursive: true, force: true });
    if (process.env["BENCH_SHOW_OUT"]) process.stderr.write(`${v.name}: output ${out.text.length} chars, ${out.text.split("\n").length} lines\n${out.text.slice(0, 3000)}\n`);
    if (process.env["BENCH_SHOW_IMDS"]) process.stderr.write(`${v.name}: IMDS ${aws.calls.filter((c) => c.api === "imds").slice(imds0).map((c) => `${c.target} ${String((c as unknown as Record<string, unknown>)["outcome"])} @${(c.at % 100000).toFixed(0)}`).join(", ")}\n`);
    return { ms, cpu, imds: aws.calls.filter((c) => c.api === "imds").length - imds0 };
  };
  const refs = imgs.map((i) => i.img.reference);
  await removeImages(docker, refs);
  for (const v of variants) await bake({ ...v, coldCache: false }); // warm the shared cache and the engine
  const res = new Map(variants.map((v) => [v.name, { ms: [] as number[], cpu: [] as number[], imds: [] as number[] }]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(k + r) % variants.length]!;
      await removeImages(docker, refs);
      const x = await bake(v, r === ROUNDS - 1);
      const acc = res.get(v.name)!;
      acc.ms.push(x.ms);
      acc.cpu.push(x.cpu);
      acc.imds.push(x.imds);
    }
    process.stderr.write(`round ${r + 1}/${ROUNDS}: ${variants.map((v) => `${v.name} ${res.get(v.name)!.cpu.at(-1)!.toFixed(2)} s CPU`).join(", ")}\n`);
  }
  // The mean too: each run's CPU is counted in 10 ms ticks, and the mean of many runs resolves finer than that.
  const rows = [["variant", "CPU median", "CPU mean", "CPU min – max", "wall median", "IMDS requests"]];
  for (const v of variants) {
    const a = res.get(v.name)!;
    const c = summary(a.cpu);
    rows.push([v.name, `${c.median.toFixed(3)} s`, `${(a.cpu.reduce((x, y) => x + y, 0) / a.cpu.length).toFixed(3)} s`, `${c.min.toFixed(2)} – ${c.max.toFixed(2)} s`, fmtMs(summary(a.ms).median), String(summary(a.imds).median)]);
  }
  console.log(`\n${engine.version} ${engine.store}; ${ROUNDS} rounds; load average ${os.loadavg().map((x) => x.toFixed(2)).join(", ")}\n\n${table(rows)}`);
} finally {
  trace?.close();
  await aws.stop();
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
}
