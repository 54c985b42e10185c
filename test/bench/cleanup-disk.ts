// `npm run cleanup-disk`: what image cleanup (SPEC §8) saves on a live box. The
// control plane rebakes a box through the daemon ten times, three services with
// new versions each time (a shared 10 MB base, 8 MB of their own); the table
// shows the engine's data root after each rebake, with cleanup on (every second,
// no minimum age, one previous bake kept) and off, on both image stores.
import { execFileSync } from "node:child_process";
import path from "node:path";
import Docker from "dockerode";
import { startDaemon, until, type Daemon } from "../e2e/daemon-harness.ts";
import { newBox, uid } from "../e2e/harness.ts";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { engineFromEnv, engineName, type Engine } from "../stack/dockerd.ts";
import { pushImage, randomLayer, type PushedImage } from "../stack/images.ts";
import { startStack } from "../stack/stack.ts";
import { table } from "./stats.ts";

const REBAKES = 10;
const MB = 1_000_000;
const ENGINES: Engine[] = ["20.10", "28.5-containerd"].map((name) => engineFromEnv({ SLOTHBOX_TEST_ENGINE: name }));

if (process.getuid?.() !== 0) {
  console.error("npm run cleanup-disk starts its own dockerd and needs root.");
  process.exit(2);
}

const stack = await startStack({ engines: ENGINES });
const aws = new AwsStandIn();
const base = randomLayer(10 * MB);
const versions: PushedImage[][] = [];

const du = (dir: string) => Number(execFileSync("du", ["-sb", dir]).toString().split("\t")[0]);

async function rebakes(engine: Engine, cleanup: boolean): Promise<{ sizes: number[]; images: number }> {
  const info = stack.infoFor(engine);
  const docker = new Docker({ socketPath: info.socketPath });
  const dataRoot = path.join(path.dirname(info.socketPath), "data");
  const b = newBox(info, aws, {
    config: { imageCleanup: cleanup, imageCleanupIntervalSeconds: 1, imageCleanupMinAgeSeconds: 0, imageCleanupKeepBakes: 1, logLevel: "warn" },
  });
  const before = du(dataRoot);
  const sizes: number[] = [];
  let d: Daemon | undefined;
  try {
    d = await startDaemon(b);
    for (const images of versions) {
      const spec = { bakeId: `bk_${uid()}`, orgId: "org_1", registryCredentials: [], services: images.map((i, n) => ({ name: `s${n}`, image: i.reference })) };
      if ((await d.api("POST", "/v1/bakes", spec)).status !== 202) throw new Error("bake refused");
      const done = await until(async () => {
        const r = await d!.api("GET", `/v1/bakes/${spec.bakeId}`);
        return r.json["status"] !== "running" ? r.json : undefined;
      }, 120_000, "bake");
      if (done["status"] !== "succeeded") throw new Error(`bake failed: ${JSON.stringify(done)}`);
      if (cleanup) {
        await until(async () => {
          const c = (await d!.api("GET", "/v1/status")).json["lastCleanup"] as { at: string } | null;
          return c && c.at > String(done["finishedAt"]);
        }, 30_000, "cleanup");
      }
      sizes.push(du(dataRoot) - before);
    }
    const images = (await docker.listImages()).filter((i) => (i.RepoTags ?? []).some((t) => t.includes("acme/disk-"))).length;
    return { sizes, images };
  } finally {
    await d?.stop("SIGTERM");
    b.cleanup();
    for (const i of await docker.listImages()) {
      if ([...(i.RepoTags ?? []), ...(i.RepoDigests ?? [])].some((t) => t.includes("acme/disk-"))) await docker.getImage(i.Id).remove({ force: true }).catch(() => undefined);
    }
  }
}

try {
  await aws.start();
  for (let v = 1; v <= REBAKES; v++) {
    const quay = stack.info.registries.quay.push;
    versions.push(await Promise.all(["api", "worker", "web"].map((s) => pushImage(quay, `acme/disk-${s}`, String(v), [base, randomLayer(8 * MB)]))));
  }
  const rows: string[][] = [];
  for (const engine of ENGINES) {
    for (const cleanup of [false, true]) {
      const r = await rebakes(engine, cleanup);
      const mb = (n: number) => `${Math.round(n / MB)} MB`;
      rows.push([engineName(engine), cleanup ? "on" : "off", mb(r.sizes[0]!), mb(r.sizes[4]!), mb(r.sizes[REBAKES - 1]!), String(r.images)]);
    }
  }
  console.log(`\nDisk used by the engine's data root after ${REBAKES} rebakes of three services (18 MB each, 10 MB shared base)\n`);
  console.log(table([["engine", "cleanup", "after 1", "after 5", `after ${REBAKES}`, "images left"], ...rows]));
} finally {
  await aws.stop();
  await stack.stop();
}
