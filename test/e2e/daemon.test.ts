// `slothbox-agent daemon` end to end: the HTTP API, bakes over the API, delivery
// that loses nothing, reconcile, credential reuse, shutdown and systemd notify.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import Docker from "dockerode";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { ControlPlane, kept } from "../stack/control-plane.ts";
import { pushRandomImage, type RegistryTarget } from "../stack/images.ts";
import { promtool } from "../stack/promtool.ts";
import { ECR_ACCOUNT } from "../stack/stack.ts";
import { makeCerts } from "../stack/certs.ts";
import { bakeDone, freePort, request, startDaemon, until, type Daemon } from "./daemon-harness.ts";
import { AGENT, dockerImage, newBox, PREFIX, secretLeaks, uid, type Box } from "./harness.ts";

const stack = inject("stack");
const docker = new Docker({ socketPath: stack.socketPath });
const aws = new AwsStandIn();
const { ghcr, ecr, quay, stall } = stack.registries;
const GH_SECRET = ghcr.password!;
const boxes: Box[] = [];
const daemons: Daemon[] = [];
const gh = { id: "rc_gh", type: "token", label: "GHCR", registry: "ghcr.io", username: "acme-bot" };
const ecrCred = { id: "rc_ecr", type: "ecr", registry: ecr.host };
const ghTarget: RegistryTarget = ghcr.push;
const spec = (services: Record<string, unknown>[], bakeId = `bk_${uid()}`) => ({ bakeId, orgId: "org_1", registryCredentials: [gh, ecrCred], services });

function box(opts: Parameters<typeof newBox>[2] = {}): Box {
  const b = newBox(stack, aws, opts);
  boxes.push(b);
  return b;
}
async function daemon(b: Box, opts: Parameters<typeof startDaemon>[1] = {}): Promise<Daemon> {
  const d = await startDaemon(b, opts);
  daemons.push(d);
  return d;
}

beforeAll(async () => {
  await aws.start();
  aws.putParameter(`${PREFIX}rc_gh`, GH_SECRET);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
});
afterEach(async () => {
  aws.clearFaults();
  for (const d of daemons.splice(0)) await d.stop("SIGKILL");
});
afterAll(async () => {
  for (const b of boxes) b.cleanup();
  await aws.stop();
});

describe("the API", () => {
  it("answers /healthz, /readyz with per-check results, /v1/status and Prometheus /metrics", async () => {
    const d = await daemon(box());
    expect(await d.api("GET", "/healthz", undefined, null)).toMatchObject({ status: 200, json: { status: "ok" } });
    const ready = await d.api("GET", "/readyz", undefined, null);
    expect(ready.status).toBe(200);
    expect(ready.json).toEqual({ status: "ready", checks: { docker: { ok: true }, aws: { ok: true }, stateDir: { ok: true } } });
    const status = await d.api("GET", "/v1/status");
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ version: "0.1.0", boxId: "box-e2e", lastBake: null });
    const metrics = await fetch(`${d.url}/metrics`).then((r) => r.text());
    expect(metrics).toContain("# TYPE slothbox_pulls_total counter");
    expect(metrics).toContain("slothbox_outbox_events 0");
  });

  it("answers bad input with clear 4xx errors and stays healthy", async () => {
    const d = await daemon(box());
    expect((await d.api("GET", "/v1/status", undefined, null)).status).toBe(401);
    expect(await d.api("GET", "/v1/status", undefined, "wrong-token")).toMatchObject({ status: 401, json: { error: { code: "unauthorized" } } });
    expect(await d.api("POST", "/v1/bakes", "{nope")).toMatchObject({ status: 400, json: { error: { code: "malformed_json" } } });
    const invalid = await d.api("POST", "/v1/bakes", { ...spec([{ name: "a", image: "quay.io/x/y:1", registryCredentialId: "rc_nope" }]), extra: 1 });
    expect(invalid.status).toBe(422);
    expect(invalid.json["violations"]).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: "extra", code: "spec_invalid" }),
        expect.objectContaining({ path: "services[0].registryCredentialId", code: "credential_not_found" }),
      ]),
    );
    const big = await d.api("POST", "/v1/bakes", JSON.stringify({ pad: "x".repeat(1_100_000) }));
    expect(big).toMatchObject({ status: 413, json: { error: { code: "payload_too_large" } } });
    expect((await d.api("GET", "/nowhere")).status).toBe(404);
    expect(await d.api("DELETE", "/v1/bakes")).toMatchObject({ status: 405, json: { error: { code: "method_not_allowed" } } });
    expect((await d.api("GET", "/v1/bakes/bk_unknown")).status).toBe(404);
    expect(await d.api("GET", "/v1/bakes/%E0%A4%A")).toMatchObject({ status: 400, json: { error: { code: "bad_request" } } });

    // A slow client that never finishes its headers is cut off.
    const t0 = Date.now();
    const closedAfter = await new Promise<number>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port: Number(new URL(d.url).port) }, () => s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
      s.on("close", () => resolve(Date.now() - t0));
      s.on("error", () => undefined);
      s.resume();
    });
    expect(closedAfter).toBeLessThan(9000);
    expect((await d.api("GET", "/healthz")).status).toBe(200);
  });
});

describe("listening beyond loopback", () => {
  /** A certificate for 127.0.0.1 from a CA of the test's own (test/stack/certs.ts). */
  function certsFor(b: Box) {
    const dir = path.join(b.dir, "tls");
    mkdirSync(dir);
    return makeCerts(dir, ["127.0.0.1", "localhost"]);
  }
  /** The daemon as a process that ends by itself: its exit code and output. */
  async function startRefused(b: Box, env: Record<string, string>) {
    const tokenFile = path.join(b.dir, "api-token");
    writeFileSync(tokenFile, "t\n", { mode: 0o600 });
    const p = spawn(process.execPath, [AGENT, "daemon", "--config", b.configFile], { env: { ...b.env, SLOTHBOX_API_TOKEN_FILE: tokenFile, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => (out += c.toString()));
    p.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
    const code = await new Promise<number | null>((resolve) => p.on("exit", (c) => resolve(c)));
    clearTimeout(timer);
    return { code, out };
  }

  it("serves only TLS there (https /healthz and the bearer API; plain http gets no answer), and warns that the unauthenticated routes answer anyone", async () => {
    const b = box();
    const certs = certsFor(b);
    const port = await freePort();
    const d = await daemon(b, { port, tls: { ca: certs.caCert }, env: { SLOTHBOX_LISTEN: `0.0.0.0:${port}`, SLOTHBOX_TLS_CERT_FILE: certs.tlsCertFile, SLOTHBOX_TLS_KEY_FILE: certs.tlsKeyFile } });
    expect(d.url).toBe(`https://127.0.0.1:${port}`);
    expect(await d.api("GET", "/healthz", undefined, null)).toMatchObject({ status: 200, json: { status: "ok" } });
    expect(await d.api("GET", "/v1/status")).toMatchObject({ status: 200, json: { boxId: "box-e2e" } });
    expect((await d.api("GET", "/v1/status", undefined, null)).status).toBe(401);
    await expect(request(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    // A client that does not trust the certificate's CA is refused by its own TLS.
    await expect(request(`https://127.0.0.1:${port}/healthz`)).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
    expect(d.output()).toContain(`daemon listening on https://0.0.0.0:${port}`);
    await until(() => d.output().includes("listening beyond loopback"), 5000, "the warning");
    const quiet = await daemon(box());
    await new Promise((r) => setTimeout(r, 300));
    expect(quiet.output()).not.toContain("listening beyond loopback");
  });

  it("refuses to start there without a certificate: exit 78 naming tlsCertFile", async () => {
    const port = await freePort();
    const r = await startRefused(box(), { SLOTHBOX_LISTEN: `0.0.0.0:${port}` });
    expect(r.code, r.out).toBe(78);
    expect(r.out).toContain(`invalid configuration: tlsCertFile: required because listen (0.0.0.0:${port}) is not a loopback address`);
  });

  it("refuses a key that is not the certificate's: exit 78 naming tlsKeyFile", async () => {
    const b = box();
    const certs = certsFor(b);
    const port = await freePort();
    const r = await startRefused(b, { SLOTHBOX_LISTEN: `0.0.0.0:${port}`, SLOTHBOX_TLS_CERT_FILE: certs.tlsCertFile, SLOTHBOX_TLS_KEY_FILE: certs.tlsCertFile });
    expect(r.code, r.out).toBe(78);
    expect(r.out).toContain(`invalid configuration: tlsKeyFile: ${certs.tlsCertFile} is not the PEM private key of ${certs.tlsCertFile}`);
  });

  it("serves TLS on loopback too when given a certificate", async () => {
    const b = box();
    const certs = certsFor(b);
    const d = await daemon(b, { tls: { ca: certs.caCert }, env: { SLOTHBOX_TLS_CERT_FILE: certs.tlsCertFile, SLOTHBOX_TLS_KEY_FILE: certs.tlsKeyFile } });
    expect(await d.api("GET", "/readyz", undefined, null)).toMatchObject({ status: 200, json: { status: "ready" } });
  });
});

describe("the unit's AWS variables", () => {
  it("AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE at /dev/null (as the unit sets them): a credential_process planted in the writable HOME never runs, the instance role is used", async () => {
    const b = box();
    const marker = path.join(b.dir, "credential-process-ran");
    mkdirSync(path.join(b.home, ".aws"));
    const planted = JSON.stringify({ Version: 1, AccessKeyId: "AKIAPLANTEDEXAMPLE00", SecretAccessKey: "planted" });
    writeFileSync(path.join(b.home, ".aws/config"), `[default]\ncredential_process = /bin/sh -c 'touch ${marker}; echo ${JSON.stringify(planted).replaceAll("'", "")}'\n`);
    const img = await pushRandomImage(ghTarget, `acme/dplant-${uid()}`, "1");
    // Without them the SDK runs the planted command before it asks IMDS: what the unit guards against.
    const exposed = spec([{ name: "api", image: img.reference, registryCredentialId: "rc_gh" }]);
    await b.run(["bake", "--spec", b.write("exposed.json", exposed), "--no-report"]);
    expect(existsSync(marker)).toBe(true);
    rmSync(marker);
    const d = await daemon(b, { env: { AWS_CONFIG_FILE: "/dev/null", AWS_SHARED_CREDENTIALS_FILE: "/dev/null" } });
    expect((await d.api("GET", "/readyz", undefined, null)).json).toMatchObject({ checks: { aws: { ok: true } } });
    const s = spec([{ name: "api", image: img.reference, registryCredentialId: "rc_gh" }]);
    expect((await d.api("POST", "/v1/bakes", s)).status).toBe(202);
    expect(await bakeDone(d, s.bakeId)).toMatchObject({ status: "succeeded" });
    expect(existsSync(marker)).toBe(false);
  });
});

describe("bakes over the API", () => {
  it("runs a posted bake, reports it, answers a known bakeId with its status, and reuses the credential", async () => {
    const cp = await new ControlPlane("cp-" + uid()).start();
    const b = box({ controlPlane: cp });
    const d = await daemon(b);
    const img = await pushRandomImage(ghTarget, `acme/dapi-${uid()}`, "1");
    const s = spec([{ name: "api", image: img.reference, registryCredentialId: "rc_gh" }]);
    const ssmBefore = aws.callsTo("ssm:GetParameter").length;
    const post = await d.api("POST", "/v1/bakes", s);
    expect(post).toMatchObject({ status: 202, json: { bakeId: s.bakeId } });
    const done = await bakeDone(d, s.bakeId);
    const pulled = await dockerImage(docker, img.reference);
    expect(pulled?.digests).toContain(img.digest);
    expect(done).toMatchObject({ bakeId: s.bakeId, status: "succeeded", services: [{ name: "api", status: "pulled", digest: img.digest, imageId: pulled!.id }] });
    expect(JSON.parse(readFileSync(path.join(b.stateDir, "manifest.json"), "utf8")).bakeId).toBe(s.bakeId);
    await until(() => cp.accepted().filter((e) => e["bakeId"] === s.bakeId).length === 3, 10_000, "events delivered");
    expect(cp.accepted().filter((e) => e["bakeId"] === s.bakeId).map((e) => e["type"]).filter(kept)).toEqual(["bake.started", "service.pulled", "bake.succeeded"]);
    expect(await d.api("POST", "/v1/bakes", s)).toMatchObject({ status: 200, json: { bakeId: s.bakeId, status: "succeeded" } });

    // A second bake within credentialCacheSeconds makes no SSM call.
    const img2 = await pushRandomImage(ghTarget, `acme/dapi2-${uid()}`, "1");
    // Two services on one image: one image pulled, counted once (slothbox_pulls_total counts images).
    const s2 = spec([
      { name: "api", image: img2.reference, registryCredentialId: "rc_gh" },
      { name: "api-too", image: img2.reference, registryCredentialId: "rc_gh" },
    ]);
    expect((await d.api("POST", "/v1/bakes", s2)).status).toBe(202);
    expect(await bakeDone(d, s2.bakeId)).toMatchObject({ status: "succeeded" });
    expect(aws.callsTo("ssm:GetParameter").length - ssmBefore).toBe(1);
    const metrics = await fetch(`${d.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/slothbox_credential_cache_hits_total\{type="token"\} 1/);
    expect(metrics).toMatch(/slothbox_pulls_total\{result="pulled"\} 2/);
    // Durations and bytes by registry host (ghcr.io); bytes only where the engine counts them (the classic store).
    expect(metrics).toMatch(/slothbox_pull_duration_seconds_count\{registry="ghcr\.io"\} 2/);
    if (stack.engine.store !== "containerd") expect(Number(/slothbox_pull_bytes_total\{registry="ghcr\.io"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/slothbox_last_successful_bake_timestamp_seconds \d+/);
    const lint = spawnSync(promtool(), ["check", "metrics"], { input: metrics, encoding: "utf8" });
    expect(lint.stdout + lint.stderr).toBe("");
    expect(lint.status).toBe(0);

    const everything = [d.output(), JSON.stringify(cp.deliveries), JSON.stringify(done), await fetch(`${d.url}/metrics`).then((r) => r.text())].join("\n");
    expect(everything).not.toContain(GH_SECRET);
    expect(everything).not.toContain(d.token);
    expect(everything).not.toContain(cp.token);
    await cp.stop();
  });

  it("pulls beside the login with a secret from its cache; one the registry no longer takes (rotated) is fetched once more and the pull runs again with the new one", async () => {
    const b = box();
    const d = await daemon(b);
    const img = await pushRandomImage(ghTarget, `acme/drot-${uid()}`, "1");
    const old = `ghp_rotatedaway${uid()}0123456789abcdef`;
    const services = [{ name: "api", image: img.reference, registryCredentialId: "rc_gh" }];
    // The first bake leaves the old secret in the daemon's cache: AWS answered it, the registry refused it.
    aws.putParameter(`${PREFIX}rc_gh`, old);
    try {
      const s1 = spec(services);
      expect((await d.api("POST", "/v1/bakes", s1)).status).toBe(202);
      expect(await bakeDone(d, s1.bakeId)).toMatchObject({ status: "failed", services: [{ name: "api", error: { code: "registry_auth_failed" } }] });
      aws.putParameter(`${PREFIX}rc_gh`, GH_SECRET);
      const ssm = aws.callsTo("ssm:GetParameter").length;
      const s2 = spec(services);
      expect((await d.api("POST", "/v1/bakes", s2)).status).toBe(202);
      expect(await bakeDone(d, s2.bakeId)).toMatchObject({ status: "succeeded", services: [{ name: "api", status: "pulled", digest: img.digest }] });
      expect((await dockerImage(docker, img.reference))?.digests).toContain(img.digest);
      expect(aws.callsTo("ssm:GetParameter").length - ssm).toBe(1);
      // The second bake started from the cached secret (a hit), then fetched it anew.
      expect(await fetch(`${d.url}/metrics`).then((r) => r.text())).toMatch(/slothbox_credential_cache_hits_total\{type="token"\} 1\n/);
      expect(secretLeaks(old, b, [], [], [d.output()])).toEqual([]);
      expect(secretLeaks(GH_SECRET, b, [], [], [d.output()])).toEqual([]);
    } finally {
      aws.putParameter(`${PREFIX}rc_gh`, GH_SECRET);
    }
  });

  it("answers 409 bake_in_progress while a bake runs; SIGTERM aborts it, reports it interrupted and exits 0 in bounded time", async () => {
    const cp = await new ControlPlane("cp-" + uid()).start();
    const repo = `acme/dstall-${uid()}`;
    await pushRandomImage(quay.push, repo, "1", { layers: 1, bytes: 512 * 1024 });
    const b = box({ controlPlane: cp });
    const d = await daemon(b);
    const s = spec([{ name: "s", image: `${stall.host}/${repo}:1` }]);
    expect((await d.api("POST", "/v1/bakes", s)).status).toBe(202);
    await until(async () => (await d.api("GET", "/v1/status")).json["runningBake"] === s.bakeId, 5000, "bake running");
    const second = await d.api("POST", "/v1/bakes", spec([{ name: "a", image: "quay.io/acme/other:1" }]));
    expect(second).toMatchObject({ status: 409, json: { error: { code: "bake_in_progress" }, bakeId: s.bakeId } });
    // The stalling registry holds the pull forever: give it time to start, then stop mid-pull.
    await new Promise((r) => setTimeout(r, 1000));
    const stopped = await d.stop("SIGTERM");
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(15_000);
    const sent = cp.accepted().filter((e) => e["bakeId"] === s.bakeId);
    expect(sent.map((e) => e["type"]).filter(kept)).toEqual(["bake.started", "service.failed", "bake.failed"]);
    expect(sent[2]).toMatchObject({ error: { code: "interrupted", retryable: true } });
    const d2 = await daemon(b);
    expect(await d2.api("GET", `/v1/bakes/${s.bakeId}`)).toMatchObject({ status: 200, json: { status: "failed", error: { code: "interrupted" } } });
    expect(secretLeaks(cp.token, b, [], cp.deliveries, [d.output(), d2.output()])).toEqual([]);
    await cp.stop();
  });
});

describe("a bake's record while it runs", () => {
  it("shows each service's result as it completes, not only at the end", async () => {
    const n = uid();
    const quick = await pushRandomImage(quay.push, `acme/dquick-${n}`, "1");
    await pushRandomImage(quay.push, `acme/dslow-${n}`, "1", { layers: 1, bytes: 512 * 1024 });
    const b = box({ config: { pullConcurrency: 2, pullRetries: 0, pullInactivityTimeoutSeconds: 60 } });
    const d = await daemon(b);
    const s = spec([
      { name: "slow", image: `${stall.host}/acme/dslow-${n}:1` },
      { name: "quick", image: quick.reference },
    ]);
    expect((await d.api("POST", "/v1/bakes", s)).status).toBe(202);
    const running = await until(async () => {
      const r = await d.api("GET", `/v1/bakes/${s.bakeId}`);
      return (r.json["services"] as unknown[]).length > 0 ? r.json : undefined;
    }, 20_000, "a service result while the bake runs");
    expect(running).toMatchObject({ status: "running", services: [{ name: "quick", status: "pulled", digest: quick.digest }] });
    expect(secretLeaks(d.token, b, [], [], [d.output()])).toEqual([]);
  });
});

describe("delivery that loses nothing", () => {
  it("delivers every event once the control plane is back, one per idempotency key", async () => {
    const cp = await new ControlPlane("cp-" + uid()).start();
    await cp.stop();
    const b = box({ controlPlane: cp });
    const d = await daemon(b);
    const img = await pushRandomImage(quay.push, `acme/dcp-${uid()}`, "1");
    const s = spec([{ name: "a", image: img.reference }]);
    expect((await d.api("POST", "/v1/bakes", s)).status).toBe(202);
    expect(await bakeDone(d, s.bakeId)).toMatchObject({ status: "succeeded" });
    const waiting = readdirSync(path.join(b.stateDir, "outbox")).filter((f) => f.endsWith(".json"));
    expect(waiting).toHaveLength(3);
    await cp.start();
    await until(async () => (await d.api("GET", "/v1/status")).json["outboxEvents"] === 0, 45_000, "outbox drained");
    const accepted = cp.accepted().filter((e) => e["bakeId"] === s.bakeId);
    expect(accepted.map((e) => e["type"]).filter(kept)).toEqual(["bake.started", "service.pulled", "bake.succeeded"]);
    expect(new Set(accepted.map((e) => e["id"])).size).toBe(3);
    await cp.stop();
  });

  it("after SIGKILL mid-bake and mid-delivery, a restart reports the bake interrupted exactly once and delivers everything", async () => {
    const cp = await new ControlPlane("cp-" + uid()).start();
    cp.hang = true;
    const b = box({ controlPlane: cp });
    const d = await daemon(b);
    const repo = `acme/dkill-${uid()}`;
    await pushRandomImage(quay.push, repo, "1", { layers: 1, bytes: 512 * 1024 });
    const s = spec([{ name: "s", image: `${stall.host}/${repo}:1` }]);
    expect((await d.api("POST", "/v1/bakes", s)).status).toBe(202);
    // The control plane has the event but never answered: the agent dies mid-delivery, mid-pull.
    await until(() => cp.deliveries.some((x) => x.bakeId === s.bakeId), 10_000, "a delivery in flight");
    await d.stop("SIGKILL");
    expect(existsSync(path.join(b.stateDir, "manifest.json"))).toBe(false);
    cp.hang = false;
    const d2 = await daemon(b);
    expect(await d2.api("GET", `/v1/bakes/${s.bakeId}`)).toMatchObject({
      status: 200,
      json: { status: "failed", error: { code: "interrupted", retryable: true, message: expect.stringContaining("stopped while this bake was running") } },
    });
    await until(async () => (await d2.api("GET", "/v1/status")).json["outboxEvents"] === 0, 20_000, "outbox drained after restart");
    await d2.stop("SIGTERM");
    // A third start finds nothing left to report.
    const d3 = await daemon(b);
    await until(async () => (await d3.api("GET", "/v1/status")).json["outboxEvents"] === 0, 20_000, "outbox drained");
    const started = cp.deliveries.filter((x) => x.bakeId === s.bakeId && x.body["type"] === "bake.started").map((x) => x.idempotencyKey);
    expect(new Set(started).size).toBe(1);
    expect(started.length).toBeGreaterThanOrEqual(2);
    const accepted = cp.accepted().filter((e) => e["bakeId"] === s.bakeId);
    expect(accepted.map((e) => e["type"]).filter(kept)).toEqual(["bake.started", "bake.failed"]);
    expect(accepted[1]).toMatchObject({ error: { code: "interrupted", retryable: true } });
    expect(existsSync(path.join(b.stateDir, "manifest.json"))).toBe(false);
    expect(secretLeaks(cp.token, b, [], cp.deliveries, [d.output(), d2.output(), d3.output()])).toEqual([]);
    await cp.stop();
  });
});

describe("reconcile", () => {
  it("re-pulls by digest, with its credential, an image of the manifest that Docker lost (SIGHUP)", async () => {
    const cp = await new ControlPlane("cp-" + uid()).start();
    const b = box({ controlPlane: cp });
    const d = await daemon(b);
    const img = await pushRandomImage(ghTarget, `acme/drec-${uid()}`, "1");
    const s = spec([{ name: "api", image: img.reference, registryCredentialId: "rc_gh" }]);
    await d.api("POST", "/v1/bakes", s);
    expect(await bakeDone(d, s.bakeId)).toMatchObject({ status: "succeeded" });
    await docker.getImage(img.reference).remove({ force: true });
    await expect(docker.getImage(img.reference).inspect()).rejects.toThrow();
    d.proc.kill("SIGHUP");
    const pinned = `${ghcr.host}/${img.repository}@${img.digest}`;
    const back = await until(() => dockerImage(docker, pinned), 30_000, "image re-pulled");
    expect(back.digests).toContain(img.digest);
    // The reference containers start by (ghcr.io/acme/…:1) is back too, not only the digest.
    const tagged = await until(() => dockerImage(docker, img.reference), 10_000, "tag restored");
    expect(tagged.id).toBe(back.id);
    await until(() => cp.accepted().some((e) => e["bakeId"] === s.bakeId && e["reconcile"] === true), 10_000, "reconcile event");
    expect(cp.accepted().find((e) => e["reconcile"] === true)).toMatchObject({ type: "service.pulled", service: "api", digest: img.digest });
    const status = await d.api("GET", "/v1/status");
    expect(status.json["lastReconcile"]).toMatchObject({ trigger: "SIGHUP", missing: ["api"], retagged: ["api"], status: "succeeded" });
    expect(d.output()).not.toContain(GH_SECRET);
    await cp.stop();
  });
});

describe("faults", () => {
  it("says what is wrong in /readyz while dockerd is down, and resumes when it is back", async () => {
    const { startDockerd } = await import("../stack/dockerd.ts");
    const dir = `/tmp/sbx-dd-${uid()}`;
    const hosts = { [quay.host]: quay.address };
    let dd = await startDockerd({ dir, hosts });
    try {
      const b = box({ config: { dockerSocket: dd.dockerHost } });
      const d = await daemon(b);
      expect((await d.api("GET", "/readyz", undefined, null)).status).toBe(200);
      await dd.stop();
      // An answer is reused for a few seconds (READINESS_CACHE_MS): the next fresh one says what is wrong.
      const down = await until(async () => {
        const r = await d.api("GET", "/readyz", undefined, null);
        return r.status === 503 ? r : undefined;
      }, 15_000, "not ready");
      expect(down.json).toMatchObject({ status: "not_ready", checks: { docker: { ok: false, reason: expect.any(String) }, aws: { ok: true }, stateDir: { ok: true } } });
      dd = await startDockerd({ dir, hosts });
      await until(async () => (await d.api("GET", "/readyz", undefined, null)).status === 200, 10_000, "ready again");
      const img = await pushRandomImage(quay.push, `acme/dback-${uid()}`, "1");
      const s = spec([{ name: "a", image: img.reference }]);
      await d.api("POST", "/v1/bakes", s);
      expect(await bakeDone(d, s.bakeId)).toMatchObject({ status: "succeeded" });
      expect((await d.api("GET", "/healthz")).status).toBe(200);
    } finally {
      await dd.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("survives an IMDS blip: /readyz says what is wrong, and work resumes by itself", async () => {
    const b = box();
    aws.fault({ api: "imds", kind: "fail", status: 500 });
    const d = await daemon(b);
    const r = await d.api("GET", "/readyz", undefined, null);
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ checks: { aws: { ok: false, reason: expect.any(String) }, docker: { ok: true } } });
    expect((await d.api("GET", "/healthz")).status).toBe(200);
    aws.clearFaults();
    await until(async () => (await d.api("GET", "/readyz", undefined, null)).status === 200, 15_000, "AWS credentials again");
    const img = await pushRandomImage(ghTarget, `acme/dimds-${uid()}`, "1");
    const s = spec([{ name: "api", image: img.reference, registryCredentialId: "rc_gh" }]);
    await d.api("POST", "/v1/bakes", s);
    expect(await bakeDone(d, s.bakeId)).toMatchObject({ status: "succeeded" });
  });
});

describe("systemd", () => {
  it("sends READY=1, watchdog pings and STOPPING=1 to NOTIFY_SOCKET", async () => {
    const b = box();
    const sock = path.join(b.dir, "notify.sock");
    const listener = spawn(
      "python3",
      ["-c", "import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint('bound',flush=True)\ns.settimeout(20)\ntry:\n  while True:\n    print(s.recv(4096).decode().replace('\\n',' '),flush=True)\nexcept Exception:\n  pass", sock],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let got = "";
    listener.stdout!.on("data", (c: Buffer) => (got += c.toString()));
    await until(() => got.includes("bound"), 5000, "notify socket bound");
    try {
      const d = await daemon(b, { env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: "1000000" } });
      await until(() => got.includes("READY=1"), 5000, "READY=1");
      await until(() => got.includes("WATCHDOG=1"), 5000, "WATCHDOG=1 at half of WATCHDOG_USEC");
      expect(got).toContain(`MAINPID=${d.proc.pid}`);
      expect((await d.stop("SIGTERM")).code).toBe(0);
      expect(got).toContain("STOPPING=1");
    } finally {
      listener.kill();
    }
  });
});
