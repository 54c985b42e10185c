// `npm run fleet-sim`: a fleet that bakes at once. N real agent processes
// (`bake`, each with its own state dir and HOME, each its own "instance" with
// its own role credentials) against the AWS stand-in throttled to R calls a
// second with a burst B, per API (SSM GetParameter and ECR GetAuthorizationToken).
// Defaults: N 40, R 2, B 5 — the 2,000-box / 40 TPS storm scaled down 50×.
// Prints, per retry strategy: bakes succeeded / failed, drain time (first call
// to last success, per API) against the bucket's minimum ((N − B) / R), p50 / p99 bake time, AWS attempts per box
// (every throttled one counts) and successful calls per box. Writes docs/fleet.md.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AwsStandIn, type Api } from "../stack/aws/stand-in.ts";
import { pushRandomImage } from "../stack/images.ts";
import { ECR_ACCOUNT, startStack } from "../stack/stack.ts";
import { median, percentile, table } from "./stats.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const AGENT = path.join(ROOT, "dist/slothbox-agent.mjs");
const N = Number(process.env["FLEET_N"] ?? 40);
const RATE = Number(process.env["FLEET_RATE"] ?? 2);
const BURST = Number(process.env["FLEET_BURST"] ?? 5);
const STRATEGIES = (process.env["FLEET_STRATEGIES"] ?? "spread,standard,adaptive").split(",");
/** Fleets per strategy, interleaved; the table shows medians (a single fleet is noisy). */
const ROUNDS = Number(process.env["FLEET_ROUNDS"] ?? 3);
const PREFIX = "/slothbox/registry-credentials/";

if (process.getuid?.() !== 0) {
  console.error("npm run fleet-sim starts its own dockerd and needs root.");
  process.exit(2);
}

const stack = await startStack();
const { ghcr, ecr } = stack.info.registries;
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-fleet-"));
const [api, worker] = await Promise.all([
  pushRandomImage(ghcr.push, "fleet/api", "1", { layers: 1, bytes: 32 * 1024 }),
  pushRandomImage(ecr.push, "fleet/worker", "1", { layers: 1, bytes: 32 * 1024 }),
]);

interface Outcome {
  strategy: string;
  ok: number;
  failed: number;
  failures: string[];
  drainS: Record<string, number>;
  minS: number;
  p50: number;
  p99: number;
  attemptsPerBox: number;
  successesPerBox: Record<string, number>;
  maxSuccessesPerCredential: number;
}

async function runFleet(strategy: string): Promise<Outcome> {
  const aws = await new AwsStandIn({ credentialsPerSession: true }).start();
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
  const apis: Api[] = ["ssm:GetParameter", "ecr:GetAuthorizationToken"];
  for (const a of apis) aws.throttle(a, RATE, BURST);
  const spec = path.join(work, `spec-${strategy}.json`);
  writeFileSync(
    spec,
    JSON.stringify({
      bakeId: `bk_fleet_${strategy}`,
      orgId: "org_fleet",
      registryCredentials: [
        { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" },
        { id: "rc_ecr", type: "ecr", registry: ecr.host },
      ],
      services: [
        { name: "api", image: api.reference, registryCredentialId: "rc_gh" },
        { name: "worker", image: worker.reference, registryCredentialId: "rc_ecr" },
      ],
    }),
  );
  const runs = await Promise.all(
    Array.from({ length: N }, (_, i) => {
      const dir = path.join(work, `${strategy}-${i}`);
      mkdirSync(path.join(dir, "home"), { recursive: true });
      const config = path.join(dir, "agent.json");
      writeFileSync(config, JSON.stringify({ stateDir: path.join(dir, "state"), dockerSocket: stack.info.dockerHost, awsRegion: "us-east-1", logLevel: "warn", awsRetryStrategy: strategy }));
      const started = Date.now();
      return new Promise<{ code: number | null; ms: number; out: string }>((resolve) => {
        const p = spawn(process.execPath, [AGENT, "bake", "--spec", spec, "--config", config, "--json"], {
          env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: path.join(dir, "home"), ...aws.env() },
          stdio: ["ignore", "pipe", "ignore"],
        });
        let out = "";
        p.stdout.on("data", (c: Buffer) => (out += c.toString()));
        p.on("exit", (code) => resolve({ code, ms: Date.now() - started, out }));
      });
    }),
  );
  const calls = aws.calls.filter((c) => c.api !== "imds");
  const boxes = new Set(calls.map((c) => c.accessKeyId).filter(Boolean));
  const drainS: Record<string, number> = {};
  const successesPerBox: Record<string, number> = {};
  let maxSuccessesPerCredential = 0;
  for (const a of apis) {
    const ok = calls.filter((c) => c.api === a && c.outcome === "ok");
    // The storm starts with the first call to the API (40 processes take seconds to start on 2 cores).
    const first = Math.min(...calls.filter((c) => c.api === a).map((c) => c.at));
    drainS[a] = ok.length ? (Math.max(...ok.map((c) => c.at)) - first) / 1000 : NaN;
    successesPerBox[a] = ok.length / N;
    const perBox = new Map<string, number>();
    for (const c of ok) perBox.set(c.accessKeyId ?? "?", (perBox.get(c.accessKeyId ?? "?") ?? 0) + 1);
    maxSuccessesPerCredential = Math.max(maxSuccessesPerCredential, ...perBox.values());
  }
  await aws.stop();
  const times = runs.map((r) => r.ms);
  const failures = runs
    .filter((r) => r.code !== 0)
    .map((r) => {
      try {
        const j = JSON.parse(r.out) as { services: { error?: { code: string; message: string } }[] };
        return j.services.map((s) => s.error?.code).filter(Boolean).join(",");
      } catch {
        return `exit ${r.code}`;
      }
    });
  return {
    strategy,
    ok: runs.filter((r) => r.code === 0).length,
    failed: failures.length,
    failures,
    drainS,
    minS: (N - BURST) / RATE,
    p50: median(times) / 1000,
    p99: percentile(times, 99) / 1000,
    attemptsPerBox: calls.length / Math.max(1, boxes.size) / 2,
    successesPerBox,
    maxSuccessesPerCredential,
  };
}

const outcomes: Outcome[] = [];
try {
  const all = new Map<string, Outcome[]>(STRATEGIES.map((st) => [st, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const st of STRATEGIES) {
      process.stderr.write(`fleet-sim: round ${round + 1}/${ROUNDS}, ${N} boxes, ${RATE} TPS, burst ${BURST}, strategy ${st}…\n`);
      all.get(st)!.push(await runFleet(st));
    }
  }
  for (const [st, os_] of all) outcomes.push(medianOutcome(st, os_));
} finally {
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
}

/** Medians over rounds; failures and the worst credential count are summed and maxed. */
function medianOutcome(strategy: string, xs: Outcome[]): Outcome {
  const m = (f: (o: Outcome) => number) => median(xs.map(f));
  return {
    strategy,
    ok: xs.reduce((n, o) => n + o.ok, 0),
    failed: xs.reduce((n, o) => n + o.failed, 0),
    failures: xs.flatMap((o) => o.failures),
    drainS: { "ssm:GetParameter": m((o) => o.drainS["ssm:GetParameter"]!), "ecr:GetAuthorizationToken": m((o) => o.drainS["ecr:GetAuthorizationToken"]!) },
    minS: xs[0]!.minS,
    p50: m((o) => o.p50),
    p99: m((o) => o.p99),
    attemptsPerBox: m((o) => o.attemptsPerBox),
    successesPerBox: { "ssm:GetParameter": m((o) => o.successesPerBox["ssm:GetParameter"]!), "ecr:GetAuthorizationToken": m((o) => o.successesPerBox["ecr:GetAuthorizationToken"]!) },
    maxSuccessesPerCredential: Math.max(...xs.map((o) => o.maxSuccessesPerCredential)),
  };
}

const rows = [
  ["strategy", `bakes ok / failed (${ROUNDS} fleets)`, "drain SSM / ECR (min)", "drain ÷ min", "bake p50 / p99", "attempts per box per API", "successful calls per box (SSM, ECR)"],
  ...outcomes.map((o) => {
    const worst = Math.max(o.drainS["ssm:GetParameter"]!, o.drainS["ecr:GetAuthorizationToken"]!);
    // Ratio of the slower API's median drain to the minimum.
    return [
      o.strategy,
      `${o.ok} / ${o.failed}${o.failed ? ` (${[...new Set(o.failures)].join("; ")})` : ""}`,
      `${o.drainS["ssm:GetParameter"]!.toFixed(1)} s / ${o.drainS["ecr:GetAuthorizationToken"]!.toFixed(1)} s (${o.minS.toFixed(1)} s)`,
      (worst / o.minS).toFixed(2),
      `${o.p50.toFixed(1)} s / ${o.p99.toFixed(1)} s`,
      o.attemptsPerBox.toFixed(2),
      `${o.successesPerBox["ssm:GetParameter"]!.toFixed(2)}, ${o.successesPerBox["ecr:GetAuthorizationToken"]!.toFixed(2)} (max ${o.maxSuccessesPerCredential} per credential)`,
    ];
  }),
];
const machine = `${os.cpus()[0]?.model ?? "?"} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
const text = `N = ${N} boxes, R = ${RATE} TPS, burst ${BURST}, per API; medians of ${ROUNDS} fleets per strategy, interleaved; ${machine}\n\n${table(rows)}\n`;
console.log("\n" + text);
const doc = path.join(ROOT, "docs/fleet.md");
const marker = "<!-- fleet-sim:results -->";
const old = (() => {
  try {
    return readFileSync(doc, "utf8");
  } catch {
    return "# Fleet storm\n\n";
  }
})();
const head = old.includes(marker) ? old.slice(0, old.indexOf(marker)) : old;
writeFileSync(doc, `${head}${marker}\n## Latest run\n\n${text}`);
console.log(`written to ${path.relative(ROOT, doc)}`);
