// Where a one-image bake's time goes: runs the agent with SLOTHBOX_TRACE=1 against
// the stack and prints each phase with millisecond timestamps.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import Docker from "dockerode";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { pushImage, randomLayer } from "../stack/images.ts";
import { startStack } from "../stack/stack.ts";

const stack = await startStack();
const aws = await new AwsStandIn().start();
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-trace-"));
const { ghcr } = stack.info.registries;
aws.putParameter("/slothbox/registry-credentials/rc_gh", ghcr.password!);
const img = await pushImage(ghcr.push, "trace/one", "1", [randomLayer(2e6), randomLayer(2e6), randomLayer(2e6)]);
const docker = new Docker({ socketPath: stack.info.socketPath });
writeFileSync(path.join(work, "agent.json"), JSON.stringify({ stateDir: path.join(work, "s"), dockerSocket: stack.info.dockerHost, awsRegion: "us-east-1", logLevel: "warn" }));
writeFileSync(path.join(work, "spec.json"), JSON.stringify({ bakeId: "bk_t", orgId: "o", registryCredentials: [{ id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" }], services: [{ name: "one", image: img.reference, registryCredentialId: "rc_gh" }] }));
for (let i = 0; i < 4; i++) {
  await docker.getImage(img.reference).remove({ force: true }).catch(() => undefined);
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const p = spawn(process.execPath, [path.resolve("dist/slothbox-agent.mjs"), "bake", "--spec", path.join(work, "spec.json"), "--config", path.join(work, "agent.json"), "--no-report"], {
      env: { PATH: process.env["PATH"]!, HOME: work, ...aws.env(), SLOTHBOX_TRACE: "1" },
    });
    const stamp = (c: Buffer) => {
      for (const l of c.toString().split("\n").filter(Boolean)) if (i === 3) console.log(`${(performance.now() - t0).toFixed(0).padStart(5)} ms  ${l.slice(0, 110)}`);
    };
    p.stdout.on("data", stamp);
    p.stderr.on("data", stamp);
    p.on("exit", () => resolve());
  });
  if (i === 3) console.log(`${(performance.now() - t0).toFixed(0).padStart(5)} ms  exit`);
}
await aws.stop();
await stack.stop();
