// `npm run demo`: the agent's main job on the local stack, end to end. Brings up
// the stack (its own dockerd, registries at ghcr.io / ECR / quay.io, the AWS
// stand-in, a control plane), bakes a token-credential service, an ECR service
// and a catalog service with the real agent, then bakes again with a revoked
// token to show a failure, and a third time with one large image from a slow
// registry to show its progress reaching the control plane. Everything it started is stopped at the end, also on
// Ctrl-C; what a person wants to look at afterwards (the manifest, the events the
// control plane received, the specs and the config) stays in OUT.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AwsStandIn } from "./stack/aws/stand-in.ts";
import { ControlPlane } from "./stack/control-plane.ts";
import { pushRandomImage } from "./stack/images.ts";
import { slowBlobs } from "./stack/registry-front.ts";
import { ECR_ACCOUNT, startStack, type Stack } from "./stack/stack.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const AGENT = path.join(ROOT, "dist/slothbox-agent.mjs");
const PREFIX = "/slothbox/registry-credentials/";
const OUT = process.env["SLOTHBOX_DEMO_OUT"] ?? "/tmp/slothbox-demo";

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const banner = (text: string) => console.log(`\n${bold(`=== ${text}`)}`);
const step = (text: string) => console.log(`  - ${text}`);

if (process.getuid?.() !== 0) {
  console.error("npm run demo starts its own dockerd in a private mount namespace and needs root: run it as root (sudo npm run demo).");
  process.exit(2);
}

let stack: Stack | undefined;
let aws: AwsStandIn | undefined;
let cp: ControlPlane | undefined;
let child: ChildProcess | undefined;
let tornDown: Promise<void> | undefined;

function teardown(): Promise<void> {
  tornDown ??= (async () => {
    banner("tearing down: the agent, the control plane, the AWS stand-in, the registries and dockerd");
    child?.kill("SIGTERM");
    await cp?.stop();
    await aws?.stop();
    await stack?.stop();
  })();
  return tornDown;
}

// Ctrl-C reaches the agent too (same process group): it aborts its bake on its own.
process.once("SIGINT", () => {
  console.log("\ninterrupted (Ctrl-C)");
  void teardown().finally(() => process.exit(130));
});

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
let failures = 0;
try {
  banner("starting the local stack");
  step("dockerd in a private mount namespace (own socket, data root and /etc/hosts)");
  step("registries under their real names on loopback: ghcr.io, quay.io, Docker Hub (TLS), GCR, Artifact Registry, DigitalOcean, ACR, GitLab, and ECR (123456789012.dkr.ecr.us-east-1.amazonaws.com)");
  const t0 = Date.now();
  stack = await startStack();
  aws = await new AwsStandIn().start();
  step(`an AWS stand-in at ${aws.url}: IMDSv2 role credentials, SSM GetParameter, ECR GetAuthorizationToken (SigV4 checked)`);
  cp = await new ControlPlane("demo-control-plane-token").start();
  step(`a control plane at ${cp.url} receiving the bake's events`);
  step(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const { ghcr, ecr, quay } = stack.info.registries;
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
  banner("pushing three images (random layers) to the registries");
  const [api, worker, cache] = await Promise.all([
    pushRandomImage(ghcr.push, "acme/api", "1.4.2", { layers: 3, bytes: 2_000_000 }),
    pushRandomImage(ecr.push, "worker", "2026.11", { layers: 2, bytes: 2_000_000 }),
    pushRandomImage(quay.push, "acme/cache", "7", { layers: 2, bytes: 1_000_000 }),
  ]);
  for (const i of [api, worker, cache]) step(`${i.reference} (${(i.bytes / 1e6).toFixed(1)} MB, ${i.layers.length} layers)`);

  writeFileSync(path.join(OUT, "control-plane-token"), cp.token, { mode: 0o600 });
  const config = path.join(OUT, "agent.json");
  const stateDir = path.join(OUT, "state");
  writeFileSync(
    config,
    JSON.stringify(
      { boxId: "box-demo", stateDir, dockerSocket: stack.info.dockerHost, awsRegion: "us-east-1", controlPlaneUrl: cp.url, controlPlaneTokenFile: path.join(OUT, "control-plane-token"), logLevel: "warn" },
      null,
      2,
    ),
  );
  const spec = (bakeId: string, credId: string) => ({
    bakeId,
    orgId: "org_demo",
    registryCredentials: [
      { id: credId, type: "token", label: "GHCR (read packages)", registry: "ghcr.io", username: "acme-bot" },
      { id: "rc_ecr", type: "ecr", label: "prod ECR", registry: ecr.host },
    ],
    services: [
      { name: "api", image: api.reference, registryCredentialId: credId },
      { name: "worker", image: `${ecr.host}/worker@${worker.digest}`, registryCredentialId: "rc_ecr" },
      { name: "cache", image: cache.reference, catalog: true },
    ],
  });
  const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: OUT, ...aws.env() };
  // Asynchronous on purpose: the AWS stand-in and the control plane live in this process.
  const bake = (file: string) =>
    new Promise<number | null>((resolve) => {
      console.log(`\n$ slothbox-agent bake --spec ${file} --config ${config}\n`);
      child = spawn(process.execPath, [AGENT, "bake", "--spec", file, "--config", config], { stdio: "inherit", env });
      child.on("exit", (code) => resolve(code));
    });

  banner("bake 1: a token credential (SSM SecureString), an ECR credential (instance role) and a catalog image");
  const good = path.join(OUT, "bake-ok.json");
  writeFileSync(good, JSON.stringify(spec("bk_demo_ok", "rc_gh"), null, 2));
  const ok = await bake(good);
  console.log(`\n→ exit code ${ok} (0 expected); the control plane received: ${cp.accepted().map((e) => e["type"]).join(", ")}`);
  if (ok !== 0) failures += 1;

  banner("bake 2: the same, but the GHCR token was revoked");
  aws.putParameter(`${PREFIX}rc_revoked`, "ghp_revoked_token_0000000000");
  const bad = path.join(OUT, "bake-revoked.json");
  writeFileSync(bad, JSON.stringify({ ...spec("bk_demo_revoked", "rc_revoked"), services: spec("", "rc_revoked").services.slice(0, 1) }, null, 2));
  const failed = await bake(bad);
  console.log(`\n→ exit code ${failed} (1 expected: a failed bake fails the Packer build; the manifest of bake 1 is untouched)`);
  if (failed !== 1) failures += 1;

  banner("bake 3: one large image from a slow registry, its progress sent to the control plane every 10 s");
  const large = await pushRandomImage(quay.push, "acme/large", "1", { layers: 3, bytes: 6_000_000 });
  // Each blob at 250 kB/s: a pull of ~25 s, as over a slow link.
  await slowBlobs(quay.control, large.repository, 250_000, large.layers.length + 1);
  step(`${large.reference} (${(large.bytes / 1e6).toFixed(1)} MB, ${large.layers.length} layers), served at 250 kB/s per layer`);
  const slow = path.join(OUT, "bake-large.json");
  writeFileSync(slow, JSON.stringify({ bakeId: "bk_demo_large", orgId: "org_demo", registryCredentials: [], services: [{ name: "search", image: large.reference, catalog: true }] }, null, 2));
  const bakedLarge = await bake(slow);
  const progress = cp.accepted().filter((e) => e["bakeId"] === "bk_demo_large" && e["type"] === "service.progress");
  console.log(`\n→ exit code ${bakedLarge} (0 expected); the control plane received ${progress.length} service.progress event(s) while it pulled:`);
  for (const e of progress) {
    const p = e["progress"] as { bytesDone: number | null; bytesTotal: number | null; layers: number; layersDownloaded: number; layersUnpacked: number };
    const bytes = p.bytesDone === null ? "bytes not counted by this engine" : `${(p.bytesDone / 1e6).toFixed(1)} MB${p.bytesTotal === null ? "" : ` of ${(p.bytesTotal / 1e6).toFixed(1)} MB`}`;
    step(`${String(e["at"])} ${String(e["service"])}: ${bytes}, ${p.layersDownloaded}/${p.layers} layers downloaded, ETA ${e["etaSeconds"] === null ? "unknown" : `${String(e["etaSeconds"])} s`}`);
  }
  if (bakedLarge !== 0 || progress.length === 0) failures += 1;

  writeFileSync(path.join(OUT, "events.json"), JSON.stringify(cp.accepted(), null, 2) + "\n");
  banner("where things went");
  step(`manifest of the successful bake: ${path.join(stateDir, "manifest.json")}`);
  step(`events the control plane received (${cp.accepted().length}): ${path.join(OUT, "events.json")}`);
  step(`specs and config: ${good}, ${bad}, ${slow}, ${config}`);
} catch (err) {
  failures += 1;
  console.error(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  await teardown();
}
console.log(failures === 0 ? "\ndemo finished as expected" : `\ndemo: ${failures} step(s) did not behave as expected`);
process.exit(failures === 0 ? 0 : 1);
