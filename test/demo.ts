// `npm run demo`: the agent's main job on the local stack, end to end. Brings up
// the stack (its own dockerd, registries at ghcr.io / ECR / quay.io, the AWS
// stand-in, a control plane), bakes a token-credential service, an ECR service
// and a catalog service with the real agent, then bakes again with a revoked
// token to show a failure, and tears everything down.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { AwsStandIn } from "./stack/aws/stand-in.ts";
import { ControlPlane } from "./stack/control-plane.ts";
import { pushRandomImage } from "./stack/images.ts";
import { ECR_ACCOUNT, startStack } from "./stack/stack.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const AGENT = path.join(ROOT, "dist/slothbox-agent.mjs");
const PREFIX = "/slothbox/registry-credentials/";

function banner(text: string): void {
  console.log(`\n\x1b[1m=== ${text}\x1b[0m`);
}

if (process.getuid?.() !== 0) {
  console.error("npm run demo starts its own dockerd in a private mount namespace and needs root.");
  process.exit(2);
}

banner("starting the local stack (own dockerd, registries, AWS stand-in, control plane)");
const stack = await startStack();
const aws = await new AwsStandIn().start();
const cp = await new ControlPlane("demo-control-plane-token").start();
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-demo-"));
let failures = 0;
try {
  const { ghcr, ecr, quay } = stack.info.registries;
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
  const [api, worker, cache] = await Promise.all([
    pushRandomImage(ghcr.push, "acme/api", "1.4.2", { layers: 3, bytes: 2_000_000 }),
    pushRandomImage(ecr.push, "worker", "2026.11", { layers: 2, bytes: 2_000_000 }),
    pushRandomImage(quay.push, "acme/cache", "7", { layers: 2, bytes: 1_000_000 }),
  ]);
  writeFileSync(path.join(work, "cp-token"), cp.token);
  const config = path.join(work, "agent.json");
  writeFileSync(
    config,
    JSON.stringify({ boxId: "box-demo", stateDir: path.join(work, "state"), dockerSocket: stack.info.dockerHost, awsRegion: "us-east-1", controlPlaneUrl: cp.url, controlPlaneTokenFile: path.join(work, "cp-token"), logLevel: "warn" }, null, 2),
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
  const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: work, ...aws.env() };
  // Asynchronous on purpose: the AWS stand-in and the control plane live in this process.
  const bake = (file: string) =>
    new Promise<number | null>((resolve) =>
      spawn(process.execPath, [AGENT, "bake", "--spec", file, "--config", config], { stdio: "inherit", env }).on("exit", (code) => resolve(code)),
    );

  banner("bake 1: a token credential (SSM SecureString), an ECR credential (instance role) and a catalog image");
  const good = path.join(work, "bake-ok.json");
  writeFileSync(good, JSON.stringify(spec("bk_demo_ok", "rc_gh"), null, 2));
  const ok = await bake(good);
  console.log(`\n→ exit code ${ok}; events received by the control plane: ${cp.accepted().map((e) => e["type"]).join(", ")}`);
  if (ok !== 0) failures += 1;

  banner("bake 2: the same, but the GHCR token was revoked");
  aws.putParameter(`${PREFIX}rc_revoked`, "ghp_revoked_token_0000000000");
  const bad = path.join(work, "bake-revoked.json");
  writeFileSync(bad, JSON.stringify({ ...spec("bk_demo_revoked", "rc_revoked"), services: spec("", "rc_revoked").services.slice(0, 1) }, null, 2));
  const failed = await bake(bad);
  console.log(`\n→ exit code ${failed} (1 expected: a failed bake fails the Packer build)`);
  if (failed !== 1) failures += 1;
} finally {
  banner("tearing down");
  await cp.stop();
  await aws.stop();
  await stack.stop();
  rmSync(work, { recursive: true, force: true });
}
console.log(failures === 0 ? "\ndemo finished as expected" : `\ndemo: ${failures} step(s) did not behave as expected`);
process.exit(failures === 0 ? 0 : 1);
