// What one engine answers, word for word: starts the stack on SLOTHBOX_TEST_ENGINE,
// drives the Engine API directly (no dockerode, so every status code and body is
// the daemon's own) through the failures the agent classifies, a pull by digest
// and a multi-layer pull, and writes the answers as JSON. Also times the engine's
// start-up to /_ping on a bare daemon.
//
//   SLOTHBOX_TEST_SUBNET=21 SLOTHBOX_TEST_ENGINE=28.5-containerd npm run engine-matrix -- OUT.json
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { engineFromEnv, engineName, startDockerd } from "../stack/dockerd.ts";
import { pushImage, pushRandomImage, randomLayer } from "../stack/images.ts";
import { injectFault } from "../stack/registry-front.ts";
import { startStack, type RegistryInfo } from "../stack/stack.ts";

const out = process.argv[2];
if (!out) {
  console.error("usage: npm run engine-matrix -- OUT.json");
  process.exit(2);
}
const engine = engineFromEnv();

interface Answer {
  status: number;
  body: string;
}

function api(socketPath: string, method: string, url: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: url, headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) }, timeout: 60_000 }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.end(body);
  });
}

/** The stream's lines until `ms` have passed, then the request is dropped: a pull that stalls never ends. */
function streamFor(socketPath: string, url: string, ms: number): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const got: Record<string, unknown>[] = [];
    let rest = "";
    const req = http.request({ socketPath, method: "POST", path: url }, (res) => {
      res.on("data", (c: Buffer) => {
        const parts = (rest + c.toString()).split("\n");
        rest = parts.pop() ?? "";
        for (const l of parts) if (l.trim()) got.push(JSON.parse(l) as Record<string, unknown>);
      });
    });
    req.on("error", (err) => (req.destroyed ? resolve(got) : reject(err)));
    setTimeout(() => {
      req.destroy();
      resolve(got);
    }, ms);
    req.end();
  });
}

const AGENT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist/slothbox-agent.mjs");

const START_RUNS = 3;
const startMs: number[] = [];
for (let i = 0; i < START_RUNS; i++) {
  const dir = `/tmp/sbx-em-${randomBytes(3).toString("hex")}`;
  const d = await startDockerd({ dir, hosts: {}, engine });
  startMs.push(d.startMs);
  await d.stop();
  rmSync(dir, { recursive: true, force: true });
}

const stack = await startStack({ engines: [engine] });
const results: Record<string, unknown> = { engine: stack.info.engine, startMs };
try {
  const { ghcr, ecr, dockerhub, flaky, quay } = stack.info.registries;
  const sock = stack.info.socketPath;
  const authHeader = (r: RegistryInfo, password = r.password!, user = r.user!) => ({
    // dockerd decodes it as padded base64url; unpadded, it silently pulls anonymously.
    "X-Registry-Auth": Buffer.from(JSON.stringify({ username: user, password, serveraddress: r.host })).toString("base64").replace(/\+/g, "-").replace(/\//g, "_"),
  });
  const lines = (body: string) => body.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const pull = async (ref: string, headers: Record<string, string> = {}) => {
    const at = ref.lastIndexOf("@") > 0 ? ref.lastIndexOf("@") : ref.lastIndexOf(":");
    const [image, tag] = [ref.slice(0, at), ref.slice(at + 1)];
    const r = await api(sock, "POST", `/images/create?fromImage=${encodeURIComponent(image)}&tag=${encodeURIComponent(tag)}`, headers);
    return r.status === 200 ? { status: 200, stream: lines(r.body) } : r;
  };
  const login = (r: RegistryInfo, password: string, user = r.user!) =>
    api(sock, "POST", "/auth", {}, JSON.stringify({ username: user, password, serveraddress: r.host === dockerhub.host ? "https://index.docker.io/v1/" : r.host }));
  const inspect = async (ref: string) => {
    const r = await api(sock, "GET", `/images/${encodeURIComponent(ref)}/json`);
    if (r.status !== 200) return r;
    const j = JSON.parse(r.body) as { Id: string; RepoTags: string[]; RepoDigests: string[] };
    return { Id: j.Id, RepoTags: j.RepoTags, RepoDigests: j.RepoDigests };
  };

  const priv = await pushRandomImage(ghcr.push, "acme/private", "1");
  const ecrImg = await pushRandomImage(ecr.push, "probe/app", "1");
  const denied = await pushRandomImage(ghcr.push, "other/secret", "1");
  results["pushed"] = { manifestDigest: priv.digest, configDigest: priv.imageId };

  results["login ok (ghcr, token auth)"] = await login(ghcr, ghcr.password!);
  results["login wrong password (ghcr, token auth)"] = await login(ghcr, "wrong");
  results["login wrong password (ecr, basic auth)"] = await login(ecr, "wrong");
  results["login wrong password (docker hub, TLS token auth)"] = await login(dockerhub, "wrong");
  results["login ok (docker hub)"] = await login(dockerhub, dockerhub.password!);

  results["pull wrong password (ghcr, token auth)"] = await pull(priv.reference, authHeader(ghcr, "wrong"));
  results["pull wrong password (ecr, basic auth)"] = await pull(ecrImg.reference, authHeader(ecr, "wrong"));
  results["pull missing tag (ghcr)"] = await pull(`${ghcr.host}/acme/private:nope`, authHeader(ghcr));
  results["pull missing repo (ghcr)"] = await pull(`${ghcr.host}/acme/missing-${randomBytes(3).toString("hex")}:1`, authHeader(ghcr));
  results["pull missing tag (ecr)"] = await pull(`${ecr.host}/probe/app:nope`, authHeader(ecr));
  results["pull anonymous of a private image (ghcr, token auth)"] = await pull(priv.reference);
  results["pull anonymous of a private image (ecr, basic auth)"] = await pull(ecrImg.reference);
  results["pull 403 denied (ghcr, repository not granted)"] = await pull(denied.reference, authHeader(ghcr));
  const limited = `acme/limited-${randomBytes(3).toString("hex")}`;
  await pushRandomImage(quay.push, limited, "1");
  await injectFault(flaky.url, limited, "ratelimit", 20);
  results["pull 429 toomanyrequests (manifest)"] = await pull(`${flaky.host}/${limited}:1`);
  const unavailable = `acme/unavailable-${randomBytes(3).toString("hex")}`;
  await pushRandomImage(quay.push, unavailable, "1");
  await injectFault(flaky.url, unavailable, "unavailable", 20);
  results["pull 503 (manifest)"] = await pull(`${flaky.host}/${unavailable}:1`);

  const byDigest = `${ghcr.host}/acme/private@${priv.digest}`;
  results["pull by digest"] = await pull(byDigest, authHeader(ghcr));
  results["inspect after pull by digest"] = await inspect(byDigest);
  results["pull by tag after pull by digest"] = await pull(priv.reference, authHeader(ghcr));
  results["inspect after pull by tag"] = await inspect(priv.reference);
  results["pull again (up to date)"] = await pull(priv.reference, authHeader(ghcr));

  const multi = await pushImage(ghcr.push, "acme/multi", "1", [randomLayer(1_000_000), randomLayer(2_000_000), randomLayer(3_000_000)]);
  results["multi-layer pull (3 layers, 1-3 MB)"] = await pull(multi.reference, authHeader(ghcr));
  results["inspect multi-layer"] = { ...(await inspect(multi.reference)), configDigest: multi.imageId, manifestDigest: multi.digest };

  const stalled = `acme/stalled-${randomBytes(3).toString("hex")}`;
  await pushImage(quay.push, stalled, "1", [randomLayer(4_000_000), randomLayer(4_000_000)]);
  results["stalled pull (stall proxy: half of each layer, then silence; first 4 s)"] = await streamFor(
    sock,
    `/images/create?fromImage=${encodeURIComponent(`${stack.info.registries.stall.host}/${stalled}`)}&tag=1`,
    4000,
  );
  // What the built agent prints for a pull that makes no more progress (its progress line needs byte counts).
  const work = mkdtempSync(path.join(os.tmpdir(), "sbx-em-agent-"));
  writeFileSync(path.join(work, "agent.json"), JSON.stringify({ stateDir: path.join(work, "state"), dockerSocket: stack.info.dockerHost, awsRegion: "us-east-1", logLevel: "warn", pullInactivityTimeoutSeconds: 5, pullTimeoutSeconds: 15, pullRetries: 0 }));
  const stalled2 = `acme/stalled2-${randomBytes(3).toString("hex")}`;
  await pushImage(quay.push, stalled2, "1", [randomLayer(4_000_000), randomLayer(4_000_000)]);
  writeFileSync(
    path.join(work, "spec.json"),
    JSON.stringify({ bakeId: "bk_probe", orgId: "org_probe", registryCredentials: [], services: [{ name: "s", image: `${stack.info.registries.stall.host}/${stalled2}:1` }] }),
  );
  // Not spawnSync: the stall proxy and the token server live in this process and must keep serving.
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [AGENT, "bake", "--spec", path.join(work, "spec.json"), "--config", path.join(work, "agent.json"), "--no-report"], {
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: work },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let text = "";
    child.stdout.on("data", (c: Buffer) => (text += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("exit", () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
  results["agent bake of a stalled pull (stdout)"] = stdout.split("\n");
  rmSync(work, { recursive: true, force: true });

  const hub = await pushRandomImage(dockerhub.push, "library/probe", "1");
  results["docker hub anonymous pull of a public image (verified TLS)"] = await pull("docker.io/library/probe:1");
  results["inspect docker hub image"] = await inspect("probe:1");
  results["docker hub pushed"] = { manifestDigest: hub.digest, configDigest: hub.imageId };
  const hubPriv = await pushRandomImage(dockerhub.push, "acme/private", "1");
  results["docker hub authenticated pull of a private image"] = await pull("acme/private:1", authHeader(dockerhub));
  results["docker hub anonymous pull of a private image"] = await pull("docker.io/acme/private:1");
  results["docker hub private pushed"] = { manifestDigest: hubPriv.digest };
} finally {
  await stack.stop();
}
mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
console.log(`${engineName(engine)} (subnet ${stack.info.subnet}): ${Object.keys(results).length} answers in ${out}`);
