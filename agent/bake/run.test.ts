// The bake as a core: deterministic tests with plain fakes of Docker, AWS and
// the clock. Ordering, one AWS call per credential, nothing started after the
// first failure, a failure while other pulls run, cancellation at each step.
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryCredentialCache } from "../credentials/cache.ts";
import { CredentialResolver, NETWORK_BUDGET_MS } from "../credentials/resolve.ts";
import { DockerHttpError } from "../docker/port.ts";
import { Scrubber } from "../errors/scrub.ts";
import type { AgentEvent } from "../report/events.ts";
import { validateSpec, type BakeSpec } from "../spec/schema.ts";
import { awsError, delay, fakeClock, hangUntil } from "../../test/unit/fakes.ts";
import { bakeFixture, PREFIX } from "../../test/unit/bake-fixture.ts";
import { DiskReserve } from "./disk-reserve.ts";
import { runBake, type BakeConfig } from "./run.ts";
import { REQUEST_TIMEOUT_MS } from "../credentials/aws-clients.ts";

const ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const D = "sha256:" + "d".repeat(64);
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function spec(services: Record<string, unknown>[], registryCredentials: Record<string, unknown>[] = []): BakeSpec {
  const r = validateSpec(
    {
      bakeId: "bk_unit",
      orgId: "org",
      registryCredentials: [
        { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" },
        { id: "rc_ecr", type: "ecr", registry: ECR },
        ...registryCredentials,
      ],
      services,
    },
    { ssmParameterPrefix: PREFIX },
  );
  if (!r.ok) throw new Error(JSON.stringify(r.violations));
  return r.spec;
}

function setup(config: Partial<BakeConfig> = {}, cache?: MemoryCredentialCache) {
  const f = bakeFixture(dirs, cache);
  const run = (s: BakeSpec, signal = new AbortController().signal) => runBake(s, f.deps(config), signal);
  const manifest = () => JSON.parse(readFileSync(path.join(f.stateDir, "manifest.json"), "utf8"));
  return { docker: f.docker, aws: f.aws, clock: f.clock, events: f.events, steps: f.steps, run, manifest, stateDir: f.stateDir };
}

const types = (events: AgentEvent[]) => events.map((e) => (e.service ? `${e.type} ${e.service}` : e.type));

describe("a bake", () => {
  it("pulls each image once, fetches and logs in with each credential once, reports in order and writes the manifest", async () => {
    const t = setup();
    const s = spec([
      { name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" },
      { name: "api-too", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" },
      { name: "web", image: "ghcr.io/acme/web:2", registryCredentialId: "rc_gh" },
      { name: "worker", image: `${ECR}/worker:7`, registryCredentialId: "rc_ecr" },
      { name: "cache", image: "quay.io/acme/cache:7" },
    ]);
    const r = await t.run(s);
    expect(r.status, JSON.stringify(r.services)).toBe("succeeded");
    expect(t.aws.calls.sort()).toEqual([`ecr us-east-1 123456789012`, `ssm ${PREFIX}rc_gh`]);
    expect(t.docker.log.filter((l) => l.startsWith("login")).sort()).toEqual([`login ${ECR}`, "login ghcr.io"]);
    expect(t.docker.pulls().sort()).toEqual([`${ECR}/worker:7 as AWS`, "ghcr.io/acme/api:1 as acme-bot", "ghcr.io/acme/web:2 as acme-bot", "quay.io/acme/cache:7"]);
    expect(types(t.events)[0]).toBe("bake.started");
    expect(types(t.events).at(-1)).toBe("bake.succeeded");
    expect(types(t.events).slice(1, -1).sort()).toEqual(["service.pulled api", "service.pulled api-too", "service.pulled cache", "service.pulled web", "service.pulled worker"]);
    expect(r.services.map((x) => [x.name, x.status])).toEqual([
      ["api", "pulled"],
      ["api-too", "pulled"],
      ["web", "pulled"],
      ["worker", "pulled"],
      ["cache", "pulled"],
    ]);
    const m = t.manifest();
    expect(m.services.map((x: { name: string; digest: string }) => x.name)).toEqual(["api", "api-too", "web", "worker", "cache"]);
    expect(m.services[0]).toMatchObject({ registryCredentialId: "rc_gh", credentialType: "token", username: "acme-bot", usernameIsSecret: false, parameterName: `${PREFIX}rc_gh` });
    expect(m.services[3]).toMatchObject({ registryCredentialId: "rc_ecr", credentialType: "ecr", username: null, usernameIsSecret: false });
  });

  it("makes no AWS call and no pull for a pinned image Docker already has", async () => {
    const t = setup();
    t.docker.has(`${ECR}/worker`, D);
    const r = await t.run(spec([{ name: "worker", image: `${ECR}/worker@${D}`, registryCredentialId: "rc_ecr" }]));
    expect(r.services[0]).toMatchObject({ status: "present", digest: D });
    expect(t.aws.calls).toEqual([]);
    expect(t.docker.pulls()).toEqual([]);
    expect(t.events.find((e) => e.type === "service.pulled")).toMatchObject({ cached: true, digest: D });
  });

  it("reports a daemon that restarts mid-bake, seen by the inspect of a pinned image, as docker_unavailable, not internal", async () => {
    const t = setup();
    t.docker.inspectPlan = async () => {
      throw Object.assign(new Error("connect ECONNREFUSED /run/docker.sock"), { code: "ECONNREFUSED" });
    };
    const r = await t.run(spec([{ name: "worker", image: `${ECR}/worker@${D}`, registryCredentialId: "rc_ecr" }]));
    expect(r.services[0]).toMatchObject({ status: "failed", error: { code: "docker_unavailable", retryable: true } });
    expect(t.events.find((e) => e.type === "service.failed")).toMatchObject({ error: { code: "docker_unavailable" } });
  });

  it("takes a pull slot only when an image is ready to pull: one needing no credential does not wait behind those waiting for theirs", async () => {
    const t = setup({ pullConcurrency: 1 });
    t.aws.before = () => delay(50);
    const r = await t.run(
      spec([
        { name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" },
        { name: "cache", image: "quay.io/acme/cache:7" },
      ]),
    );
    expect(r.status).toBe("succeeded");
    expect(t.docker.pulls()).toEqual(["quay.io/acme/cache:7", "ghcr.io/acme/api:1 as acme-bot"]);
  });

  it("never runs more than pullConcurrency pulls at once", async () => {
    const t = setup({ pullConcurrency: 2 });
    let running = 0;
    let most = 0;
    for (const n of [1, 2, 3, 4, 5]) {
      t.docker.plan(`quay.io/acme/i${n}:1`, { kind: "ok", afterMs: 20 });
    }
    const pull = t.docker.pull.bind(t.docker);
    t.docker.pull = async (req) => {
      most = Math.max(most, ++running);
      const stream = await pull(req);
      stream.on("end", () => running--);
      return stream;
    };
    const r = await t.run(spec([1, 2, 3, 4, 5].map((n) => ({ name: `s${n}`, image: `quay.io/acme/i${n}:1` }))));
    expect(r.status).toBe("succeeded");
    expect(most).toBe(2);
  });

  it("asks Docker whether it answers and where it keeps images, and fetches credentials, while the bake's start is written", async () => {
    const f = bakeFixture(dirs);
    const asked: string[] = [];
    f.docker.ping = async () => void asked.push("ping");
    f.docker.dataRoot = async () => (asked.push("info"), "/var/lib/docker");
    const disk = new DiskReserve({ dataRoot: (signal) => f.docker.dataRoot(signal), space: async () => ({ free: 100 * 1e9, total: 200 * 1e9 }), reserveBytes: 1e9, reservePercent: 0 });
    const seenAtStart: string[][] = [];
    const emit = async (e: AgentEvent) => {
      if (e.type === "bake.started") {
        for (let i = 0; i < 100 && asked.length < 2; i++) await new Promise((r) => setImmediate(r));
        seenAtStart.push([...asked, ...f.aws.calls]);
      }
      f.events.push(e);
    };
    const r = await runBake(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]), f.deps({}, { disk, emit }), new AbortController().signal);
    expect(r.status).toBe("succeeded");
    expect(seenAtStart).toEqual([["ping", "info", `ssm ${PREFIX}rc_gh`]]);
    expect(asked).toEqual(["ping", "info"]);
  });

  it("starts asking Docker and AWS while the daemon's record of the bake is written, and sends no event before it is", async () => {
    const f = bakeFixture(dirs);
    const asked: string[] = [];
    f.docker.ping = async () => void asked.push("ping");
    let written!: () => void;
    const recorded = new Promise<void>((r) => (written = r));
    const running = runBake(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]), f.deps({}, { recorded }), new AbortController().signal);
    for (let i = 0; i < 100 && (asked.length === 0 || f.aws.calls.length === 0); i++) await new Promise((r) => setImmediate(r));
    expect([asked, f.aws.calls, f.events]).toEqual([["ping"], [`ssm ${PREFIX}rc_gh`], []]);
    written();
    expect((await running).status).toBe("succeeded");
    expect(types(f.events)).toEqual(["bake.started", "service.pulled api", "bake.succeeded"]);
  });

  it("ends what the start began when the record cannot be written: Docker is no longer waited for", async () => {
    const f = bakeFixture(dirs);
    let pingEnded: (reason: unknown) => void = () => undefined;
    const ended = new Promise((r) => (pingEnded = r));
    f.docker.ping = async (signal) => {
      signal.addEventListener("abort", () => pingEnded(signal.reason), { once: true });
      await hangUntil(signal);
    };
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    await expect(runBake(spec([{ name: "api", image: "quay.io/acme/api:1" }]), f.deps({}, { recorded: Promise.reject(full) }), new AbortController().signal)).rejects.toBe(full);
    expect(await Promise.race([ended, delay(1000).then(() => "still waiting")])).toBe(full);
  });

  it("fails with the error of a record that cannot be written, before any event", async () => {
    const f = bakeFixture(dirs);
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    await expect(runBake(spec([{ name: "api", image: "quay.io/acme/api:1" }]), f.deps({}, { recorded: Promise.reject(full) }), new AbortController().signal)).rejects.toBe(full);
    expect(f.events).toEqual([]);
    expect(f.docker.pulls()).toEqual([]);
  });

  it("passes a pull slot on once the engine has pulled the image, before its inspect", async () => {
    const t = setup({ pullConcurrency: 1 });
    t.docker.inspectPlan = async (ref) => {
      if (!ref.startsWith("quay.io/acme/first")) return;
      for (let i = 0; i < 100 && t.docker.pulls().length < 2; i++) await new Promise((r) => setImmediate(r));
      if (t.docker.pulls().length < 2) throw new DockerHttpError(500, "test: the next pull waited for this inspect");
    };
    const r = await t.run(
      spec([
        { name: "first", image: "quay.io/acme/first:1" },
        { name: "second", image: "quay.io/acme/second:1" },
      ]),
    );
    expect(r.status).toBe("succeeded");
    expect(t.docker.pulls()).toEqual(["quay.io/acme/first:1", "quay.io/acme/second:1"]);
  });

  it("skips an image with a credential once the bake has failed, and its refused login is no unhandled rejection", async () => {
    const t = setup({ pullConcurrency: 1 });
    t.docker.plan("quay.io/acme/broken:1", { kind: "http", status: 404, message: "manifest for quay.io/acme/broken:1 not found: manifest unknown: manifest unknown" });
    t.docker.loginPlan = async () => {
      await delay(20);
      throw new DockerHttpError(401, 'Get "https://ghcr.io/v2/": denied: denied');
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => void unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const r = await t.run(
        spec([
          { name: "broken", image: "quay.io/acme/broken:1" },
          { name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" },
        ]),
      );
      expect(r.services.map((x) => [x.name, x.status])).toEqual([
        ["broken", "failed"],
        ["api", "skipped"],
      ]);
      await delay(50);
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("fails to report (an outbox on a full disk) only once the pulls it started have ended", async () => {
    const t = setup({ pullConcurrency: 2 });
    t.docker.plan("quay.io/acme/slow:1", { kind: "ok", afterMs: 80 });
    let slowEnded = false;
    const pull = t.docker.pull.bind(t.docker);
    t.docker.pull = async (req) => {
      const stream = await pull(req);
      if (req.fromImage.endsWith("slow")) stream.on("end", () => (slowEnded = true));
      return stream;
    };
    const run = runBake(
      spec([
        { name: "fast", image: "quay.io/acme/fast:1" },
        { name: "slow", image: "quay.io/acme/slow:1" },
      ]),
      {
        config: { stateDir: t.stateDir, pullConcurrency: 2, pullRetries: 0, pullTimeoutSeconds: 60, pullInactivityTimeoutSeconds: 30 },
        docker: t.docker,
        resolver: new CredentialResolver({ aws: () => t.aws, scrubber: new Scrubber(), clock: fakeClock(), random: () => 0.5, ssmParameterPrefix: PREFIX }),
        clock: fakeClock(),
        random: () => 0.5,
        scrubber: new Scrubber(),
        emit: async (e) => {
          if (e.type === "service.pulled" && e.service === "fast") throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        },
      },
      new AbortController().signal,
    );
    await expect(run).rejects.toThrow(/ENOSPC/);
    expect(slowEnded).toBe(true);
  });

  it("does not count a pull whose layers wait for the engine's download slots as stalled; a silent one is", async () => {
    const t = setup({ pullInactivityTimeoutSeconds: 1, pullConcurrency: 2 });
    t.docker.plan("quay.io/acme/queued:1", { kind: "queued", afterMs: 1500 });
    t.docker.plan("quay.io/acme/silent:1", { kind: "hang" });
    const r = await t.run(
      spec([
        { name: "queued", image: "quay.io/acme/queued:1" },
        { name: "silent", image: "quay.io/acme/silent:1" },
      ]),
    );
    expect(r.services.map((x) => [x.name, x.status, x.error?.code])).toEqual([
      ["queued", "pulled", undefined],
      ["silent", "failed", "pull_timeout"],
    ]);
    expect(r.services[1]!.error?.message).toMatch(/made no progress for 1 s/);
  });

  it("starts nothing after the first failure, while a pull already running finishes and reports", async () => {
    const t = setup({ pullConcurrency: 2 });
    t.docker.plan("quay.io/acme/broken:1", { kind: "http", status: 404, message: "manifest for quay.io/acme/broken:1 not found: manifest unknown: manifest unknown" });
    t.docker.plan("quay.io/acme/slow:1", { kind: "ok", afterMs: 50 });
    const r = await t.run(
      spec([
        { name: "broken", image: "quay.io/acme/broken:1" },
        { name: "slow", image: "quay.io/acme/slow:1" },
        { name: "later", image: "quay.io/acme/later:1" },
      ]),
    );
    expect(r.services.map((x) => [x.name, x.status, x.error?.code])).toEqual([
      ["broken", "failed", "image_not_found"],
      ["slow", "pulled", undefined],
      ["later", "skipped", undefined],
    ]);
    expect(t.docker.pulls()).toEqual(["quay.io/acme/broken:1", "quay.io/acme/slow:1"]);
    expect(types(t.events)).toEqual(["bake.started", "service.failed broken", "service.pulled slow", "bake.failed broken"]);
    expect(r.error?.code).toBe("image_not_found");
  });

  it("fails an image whose login is refused with the login's words, aborting the pull that ran beside it", async () => {
    const t = setup();
    t.docker.loginPlan = async () => {
      throw new DockerHttpError(500, "login attempt to http://ghcr.io/v2/ failed with status: 401 Unauthorized");
    };
    t.docker.plan("ghcr.io/acme/api:1", { kind: "hang" });
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]));
    expect(r.services[0]!.error).toMatchObject({ code: "registry_auth_failed", message: expect.stringContaining("401 Unauthorized") });
  });

  it("asks the engine for the registry's words where the pull kept only a status, and classifies on them", async () => {
    const t = setup();
    t.docker.plan("ghcr.io/acme/api:1", {
      kind: "http",
      status: 500,
      message: 'unknown: failed to resolve reference "ghcr.io/acme/api:1": unexpected status from HEAD request to http://ghcr.io/v2/acme/api/manifests/1: 403 Forbidden',
    });
    t.docker.distribution.set("ghcr.io/acme/api:1", new DockerHttpError(403, 'Head "http://ghcr.io/v2/acme/api/manifests/1": denied: requested access to the resource is denied'));
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]));
    expect(r.services[0]!.error).toMatchObject({
      code: "image_access_denied",
      message: expect.stringContaining("403 Forbidden"),
      registryMessage: "denied: requested access to the resource is denied",
    });
    expect(t.docker.log).toContain("distribution ghcr.io/acme/api:1");
  });

  it("bounds the question: a registry that stalls on it leaves Docker's line standing", async () => {
    const t = setup({ pullInactivityTimeoutSeconds: 1 });
    const line = 'unknown: failed to resolve reference "ghcr.io/acme/api:1": unexpected status from HEAD request to http://ghcr.io/v2/acme/api/manifests/1: 403 Forbidden';
    t.docker.plan("ghcr.io/acme/api:1", { kind: "http", status: 500, message: line });
    t.docker.distributionPlan = (_ref, signal) => hangUntil(signal);
    const t0 = Date.now();
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.services[0]!.error).toMatchObject({ message: line });
    expect(r.services[0]!.error?.registryMessage).toBeUndefined();
  });

  it("asks no more when Docker's line kept the registry's words", async () => {
    const t = setup();
    t.docker.plan("ghcr.io/acme/api:1", { kind: "http", status: 500, message: 'Head "http://ghcr.io/v2/acme/api/manifests/1": denied' });
    t.docker.distribution.set("ghcr.io/acme/api:1", new DockerHttpError(500, "should not be asked"));
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]));
    expect(r.services[0]!.error).toMatchObject({ code: "image_access_denied", registryMessage: "denied" });
    expect(t.docker.log.filter((l) => l.startsWith("distribution"))).toEqual([]);
  });

  it("reports a retryable pull failure after 1 + pullRetries attempts, with Docker's words of the last", async () => {
    const t = setup({ pullRetries: 1 });
    const gw = (n: number) => ({ kind: "http", status: 500, message: `received unexpected HTTP status: 502 Bad Gateway (${n})` }) as const;
    t.docker.plan("flaky.registry.test/acme/api:1", gw(1), gw(2), gw(3));
    const r = await t.run(spec([{ name: "api", image: "flaky.registry.test/acme/api:1" }]));
    expect(r.services[0]!.error).toMatchObject({ code: "registry_unreachable", retryable: true, attempts: 2, message: "received unexpected HTTP status: 502 Bad Gateway (2)" });
    expect(t.docker.pulls()).toHaveLength(2);
    expect(t.steps.filter((s) => s.kind === "retry")).toHaveLength(1);
  });

  it("reports a permanent pull failure after one attempt", async () => {
    const t = setup({ pullRetries: 3 });
    const words = "filesystem layer verification failed for digest sha256:0928c415c340a66c102de05b3f1c2ebe1c0a586d4e5353b7acee549bb90bc3eb";
    t.docker.plan("flaky.registry.test/acme/api:1", { kind: "stream-error", message: words });
    const r = await t.run(spec([{ name: "api", image: "flaky.registry.test/acme/api:1" }]));
    expect(r.services[0]!.error).toEqual({ code: "digest_mismatch", retryable: false, attempts: 1, message: words, hint: expect.stringMatching(/does not match/) });
    expect(t.docker.pulls()).toHaveLength(1);
  });

  it("keeps the attempts when it asks the engine for the registry's words after the last one", async () => {
    const t = setup({ pullRetries: 1 });
    const lost = {
      kind: "http",
      status: 500,
      message: 'failed to resolve reference "flaky.registry.test/acme/api:1": unexpected status from HEAD request to http://flaky.registry.test/v2/acme/api/manifests/1: 502 Bad Gateway',
    } as const;
    t.docker.plan("flaky.registry.test/acme/api:1", lost, lost);
    t.docker.distribution.set("flaky.registry.test/acme/api:1", new DockerHttpError(500, "received unexpected HTTP status: 502 Bad Gateway"));
    const r = await t.run(spec([{ name: "api", image: "flaky.registry.test/acme/api:1" }]));
    expect(r.services[0]!.error).toMatchObject({ code: "registry_unreachable", attempts: 2, registryMessage: "received unexpected HTTP status: 502 Bad Gateway" });
  });

  /** A secret in the daemon's cache from an earlier bake ("ghp_old"), and AWS now holding "ghp_new". */
  async function rotated() {
    const cache = new MemoryCredentialCache(300);
    const before = setup({}, cache);
    before.aws.parameters.set(`${PREFIX}rc_gh`, { type: "SecureString", value: "ghp_old" });
    expect((await before.run(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]))).status).toBe("succeeded");
    const t = setup({}, cache);
    t.aws.parameters.set(`${PREFIX}rc_gh`, { type: "SecureString", value: "ghp_new" });
    return { ...t, cache };
  }

  it("pulls with a secret from the daemon's cache while its login runs", async () => {
    const t = await rotated();
    t.docker.loginPlan = async () => {
      for (let i = 0; i < 100 && t.docker.pulls().length === 0; i++) await new Promise((r) => setImmediate(r));
      if (t.docker.pulls().length === 0) throw new DockerHttpError(500, "test: the pull waited for the login");
    };
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:2", registryCredentialId: "rc_gh" }]));
    expect(r.status).toBe("succeeded");
    expect(t.docker.pullAuths.map((a) => a?.password)).toEqual(["ghp_old"]);
    expect(t.aws.calls).toEqual([]);
  });

  // dockerd's words for a pull with a revoked token (docs/DOCKER-AND-AWS-FACTS.md, test/fixtures/engine-texts.json).
  const REFUSED = { kind: "http", status: 500, message: 'Head "https://ghcr.io/v2/acme/api/manifests/2": denied: denied' } as const;

  it.each([
    ["refused by the registry", REFUSED],
    ["still running", { kind: "hang" } as const],
  ])("fetches a cached secret once more when its login is refused (rotated), and pulls again with the new one (the pull with the old one %s)", async (_, first) => {
    const t = await rotated();
    t.docker.plan("ghcr.io/acme/api:2", first);
    t.docker.loginPlan = async (auth) => {
      if (auth.password === "ghp_old") throw new DockerHttpError(500, "Get \"https://ghcr.io/v2/\": denied: denied");
    };
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:2", registryCredentialId: "rc_gh" }]));
    expect(r.status).toBe("succeeded");
    expect(t.docker.logins.map((a) => a.password)).toEqual(["ghp_old", "ghp_new"]);
    expect(t.docker.pullAuths.map((a) => a?.password)).toEqual(["ghp_old", "ghp_new"]);
    expect(t.aws.calls).toEqual([`ssm ${PREFIX}rc_gh`]);
  });

  it("pulls later images of a rotated secret with the new one only", async () => {
    const t = await rotated();
    const t1 = setup({ pullConcurrency: 1 }, t.cache);
    t1.aws.parameters.set(`${PREFIX}rc_gh`, { type: "SecureString", value: "ghp_new" });
    t1.docker.plan("ghcr.io/acme/api:2", REFUSED);
    t1.docker.loginPlan = async (auth) => {
      if (auth.password === "ghp_old") throw new DockerHttpError(500, "Get \"https://ghcr.io/v2/\": denied: denied");
    };
    const r = await t1.run(
      spec([
        { name: "api", image: "ghcr.io/acme/api:2", registryCredentialId: "rc_gh" },
        { name: "web", image: "ghcr.io/acme/web:2", registryCredentialId: "rc_gh" },
      ]),
    );
    expect(r.status).toBe("succeeded");
    expect(t1.docker.log.filter((l) => l.startsWith("pull ")).map((l, i) => `${l.split(" ")[1]} ${t1.docker.pullAuths[i]?.password}`)).toEqual([
      "ghcr.io/acme/api:2 ghp_old",
      "ghcr.io/acme/api:2 ghp_new",
      "ghcr.io/acme/web:2 ghp_new",
    ]);
  });

  it("keeps an image the engine pulled with a secret that a login beside it then found rotated: no pull again", async () => {
    const t = await rotated();
    let inspecting!: () => void;
    const inspected = new Promise<void>((r) => (inspecting = r));
    let renewedLogin!: () => void;
    const loggedInAnew = new Promise<void>((r) => (renewedLogin = r));
    t.docker.inspectPlan = async (ref, signal) => {
      if (!ref.startsWith("ghcr.io/acme/api")) return;
      inspecting();
      // Answers a while after the new login, long enough for a renewal to end the pull if it would.
      const later = loggedInAnew.then(async () => {
        for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
      });
      await Promise.race([later, hangUntil(signal)]);
    };
    t.docker.loginPlan = async (auth) => {
      if (auth.password !== "ghp_old") return renewedLogin();
      await inspected;
      throw new DockerHttpError(500, "Get \"https://ghcr.io/v2/\": denied: denied");
    };
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:2", registryCredentialId: "rc_gh" }]));
    expect(r.services[0]).toMatchObject({ status: "pulled" });
    expect(t.docker.pullAuths.map((a) => a?.password)).toEqual(["ghp_old"]);
    expect(t.docker.logins.map((a) => a.password)).toEqual(["ghp_old", "ghp_new"]);
  });

  it("fails with the login's error when the secret fetched once more is refused too, and the pull beside it ends", async () => {
    const t = await rotated();
    t.docker.plan("ghcr.io/acme/api:2", { kind: "hang" });
    t.docker.loginPlan = async () => {
      throw new DockerHttpError(500, "Get \"https://ghcr.io/v2/\": denied: denied");
    };
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:2", registryCredentialId: "rc_gh" }]));
    expect(r.services[0]!.error).toMatchObject({ code: "registry_auth_failed" });
    expect(t.docker.pullAuths.map((a) => a?.password)).toEqual(["ghp_old"]);
  });

  it.each(["registry.digitalocean.com", "registry.digitalocean.com:443", "Registry.DigitalOcean.com:443"])("logs in to DigitalOcean (%s) with the secret as username and records usernameIsSecret, never the username", async (host) => {
    const t = setup();
    t.aws.parameters.set(`${PREFIX}rc_do`, { type: "SecureString", value: "dop_v1_new" });
    const r = await t.run(
      spec(
        [{ name: "app", image: `${host}/acme/app:1`, registryCredentialId: "rc_do" }],
        [{ id: "rc_do", type: "token", registry: host, username: "dop_v1_rotated_away" }],
      ),
    );
    expect(r.status).toBe("succeeded");
    expect(t.docker.logins.map((a) => a.username)).toEqual(["dop_v1_new"]);
    expect(t.manifest().services[0]).toMatchObject({ username: null, usernameIsSecret: true });
    expect(readFileSync(path.join(t.stateDir, "manifest.json"), "utf8")).not.toContain("dop_v1");
  });

  it("retries AWS credentials that cannot be obtained right now (IMDS blip) within a minute, and says how many attempts failed", async () => {
    const t = setup({ pullRetries: 0 });
    let fails = 2;
    t.aws.before = async () => {
      if (fails-- > 0) throw awsError("CredentialsProviderError", "Could not load credentials from any providers");
    };
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]));
    expect(r.status).toBe("succeeded");
    expect(t.aws.calls).toHaveLength(3);
    expect(t.steps.filter((s) => s.kind === "credential-retry").map((s) => s.kind === "credential-retry" && [s.error.code, s.attempts])).toEqual([
      ["aws_credentials_unavailable", 1],
      ["aws_credentials_unavailable", 2],
    ]);

    const t2 = setup({ pullRetries: 0 });
    const started = t2.clock.now();
    t2.aws.before = async () => {
      throw awsError("CredentialsProviderError", "Could not load credentials from any providers");
    };
    const r2 = await t2.run(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]));
    expect(r2.services[0]!.error).toMatchObject({ code: "aws_credentials_unavailable", retryable: true, message: expect.stringContaining("Could not load credentials"), attempts: t2.aws.calls.length });
    expect(t2.aws.calls.length).toBeGreaterThanOrEqual(2);
    // Retried within the minute, not pullRetries times: the last attempt starts when one bounded by the request timeout still ends within it.
    expect(t2.clock.now() - started).toBe(NETWORK_BUDGET_MS - REQUEST_TIMEOUT_MS);
  });

  it("reports an AWS endpoint that never answers as aws_unreachable after a minute, never as aws_throttled", async () => {
    const t = setup();
    const started = t.clock.now();
    t.aws.before = async () => {
      throw Object.assign(new Error("getaddrinfo ENOTFOUND ssm.us-east-1.amazonaws.com"), { code: "ENOTFOUND" });
    };
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]));
    expect(r.services[0]!.error).toMatchObject({ code: "aws_unreachable", retryable: true, message: expect.stringContaining("getaddrinfo ENOTFOUND ssm.us-east-1.amazonaws.com"), attempts: t.aws.calls.length });
    expect(t.clock.now() - started).toBe(NETWORK_BUDGET_MS - REQUEST_TIMEOUT_MS);
  });

  it("does not retry a permanent AWS refusal", async () => {
    const t = setup({ pullRetries: 3 });
    t.aws.before = async () => {
      throw awsError("AccessDeniedException", "User: arn:aws:sts::123456789012:assumed-role/box/i-1 is not authorized to perform: ssm:GetParameter");
    };
    const r = await t.run(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]));
    expect(r.services[0]!.error?.code).toBe("secret_access_denied");
    expect(t.aws.calls).toHaveLength(1);
  });
});

describe("a bake stopped at each step", () => {
  const cases: [string, (t: ReturnType<typeof setup>) => void][] = [
    ["while Docker is not answering", (t) => (t.docker.ping = (signal) => hangUntil(signal))],
    ["while the credential is fetched", (t) => (t.aws.before = (_call, signal) => hangUntil(signal))],
    ["while logging in", (t) => (t.docker.loginPlan = (_auth, signal) => hangUntil(signal))],
    ["while pulling", (t) => t.docker.plan("ghcr.io/acme/api:1", { kind: "hang" })],
    ["while inspecting the pulled image", (t) => (t.docker.inspectPlan = async (ref, signal) => (ref.includes("@") || !signal ? undefined : hangUntil(signal)))],
  ];

  it.each(cases)("%s: ends at once, failed with interrupted, reported, no manifest", async (_name, arrange) => {
    const t = setup();
    arrange(t);
    const ctl = new AbortController();
    const done = t.run(spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]), ctl.signal);
    await delay(20);
    const t0 = Date.now();
    ctl.abort(new Error("interrupted by SIGTERM"));
    const r = await done;
    expect(Date.now() - t0).toBeLessThan(500);
    expect(r.status).toBe("failed");
    expect(r.error).toMatchObject({ code: "interrupted", retryable: true, message: expect.stringContaining("SIGTERM") });
    expect(["failed", "skipped"]).toContain(r.services[0]!.status);
    if (r.services[0]!.status === "failed") expect(r.services[0]!.error?.code).toBe("interrupted");
    expect(t.events.at(-1)).toMatchObject({ type: "bake.failed", error: { code: "interrupted" } });
    expect(() => t.manifest()).toThrow();
  });
});
