// Every SPEC §5 code a box can meet, produced by a real bake against the real
// stack: the exact code, the words of Docker or AWS, the hint, and the retry
// behaviour (a retryable error retried pullRetries times, counted at the
// registry; a permanent one attempted once). The codes that need a registry to
// refuse in its own words live in registries.test.ts; the spec's own codes in
// cli.test.ts and bake.test.ts. What the engine says and how it asks a registry
// differ by engine and image store, so the codes the engine reports run on every
// engine of the matrix; those the engine plays no part in, once.
import Docker from "dockerode";
import { rmSync } from "node:fs";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { startDockerd, type Dockerd } from "../stack/dockerd.ts";
import { pushRandomImage } from "../stack/images.ts";
import { injectFault, requestCounts } from "../stack/registry-front.ts";
import { leftovers } from "../stack/stack.ts";
import { dockerImage, newBox, parseJsonResult, PREFIX, secretLeaks, uid, type Box } from "./harness.ts";

const stack = inject("stack");
const docker = new Docker({ socketPath: stack.socketPath });
const aws = new AwsStandIn();
const { ghcr, quay, stall } = stack.registries;
const boxes: Box[] = [];
const box = (opts: Parameters<typeof newBox>[2] = {}) => {
  const b = newBox(stack, aws, opts);
  boxes.push(b);
  return b;
};
const gh = { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" };
/**
 * Codes the engine plays no part in (the Docker socket is absent, AWS fails before any
 * pull, the agent's own timer fires) run once, on the system's engine: the integration project.
 */
const ON_SYSTEM_ENGINE = stack.engine.version === "20.10";
const spec = (services: Record<string, unknown>[]) => ({ bakeId: `bk_${uid()}`, orgId: "o", registryCredentials: [gh], services });

beforeAll(async () => {
  await aws.start();
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
});
afterAll(async () => {
  for (const b of boxes) b.cleanup();
  await aws.stop();
});

describe.runIf(ON_SYSTEM_ENGINE)("docker_unavailable", () => {
  it("on the CLI: a socket that does not answer is retried for 30 s, then the bake fails with the connection's words", async () => {
    const b = box({ config: { dockerSocket: `/tmp/sbx-no-docker-${uid()}.sock` } });
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "a", image: "quay.io/acme/a:1" }])), "--json"]);
    expect(r.code).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e).toMatchObject({ code: "docker_unavailable", retryable: true });
    expect(e.message).toMatch(/did not answer within 30 s: connect ENOENT/);
    expect(e.hint).toMatch(/systemctl status docker/);
    expect(r.stderr).toMatch(/Docker is not answering .*retrying for up to 30 s/);
    expect(r.ms).toBeGreaterThanOrEqual(29_000);
    expect(r.ms).toBeLessThan(45_000);
  }, 60_000);
});

describe.runIf(ON_SYSTEM_ENGINE)("docker_unavailable mid-bake", () => {
  it("a daemon that drops the connection when asked whether a pinned image is present: docker_unavailable, not internal", async () => {
    // The Docker socket as the agent meets a dockerd restarting between its ping and its
    // inspect: everything passes through to the stack's daemon, until an image inspect,
    // whose connection is dropped (the agent reads ECONNRESET, as from a daemon going down).
    const socketPath = `/tmp/sbx-drop-${uid()}.sock`;
    let inspects = 0;
    const server = net.createServer((client) => {
      const upstream = net.connect(stack.socketPath);
      client.on("data", (chunk: Buffer) => {
        if (/^GET (\/v[\d.]+)?\/images\/\S+\/json /m.test(chunk.toString("latin1"))) {
          inspects += 1;
          client.destroy();
          upstream.destroy();
          return;
        }
        upstream.write(chunk);
      });
      upstream.on("data", (chunk: Buffer) => client.write(chunk));
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    try {
      const b = box({ config: { dockerSocket: socketPath } });
      const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "a", image: `quay.io/acme/pinned@sha256:${"e".repeat(64)}` }])), "--json"]);
      expect(r.code).toBe(1);
      expect(inspects).toBeGreaterThan(0);
      const e = parseJsonResult(r).services[0]!.error!;
      expect(e).toMatchObject({ code: "docker_unavailable", retryable: true, message: expect.stringMatching(/^the Docker daemon did not answer: .*(socket hang up|ECONNRESET)/) });
      expect(e.hint).toMatch(/systemctl status docker/);
    } finally {
      server.close();
      rmSync(socketPath, { force: true });
    }
  });
});

describe.runIf(ON_SYSTEM_ENGINE)("aws_credentials_unavailable", () => {
  it("IMDS gone: retried within the minute inside the bake, each retry shown, then reported naming the metadata service, with attempts", async () => {
    const b = box({ config: { pullRetries: 2 } });
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "a", image: "ghcr.io/acme/a:1", registryCredentialId: "rc_gh" }]))], {
      // Nothing listens there: the instance has no metadata service.
      env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://127.0.0.1:9" },
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/error: service a \(ghcr\.io\/acme\/a:1\): aws_credentials_unavailable \(retryable; \d+ attempts failed within a minute\)/);
    expect(r.stdout).toMatch(/reported: ssm:GetParameter \/slothbox\/registry-credentials\/rc_gh: no credentials for the instance role from http:\/\/127\.0\.0\.1:9: \w*(Credentials)?ProviderError: /);
    expect(r.stdout).toMatch(/hint: .*instance profile/);
    // Not pullRetries times: as often as the minute allows.
    expect(r.stdout.match(/credential rc_gh: aws_credentials_unavailable .*; \d+ attempts? so far, retrying for up to \d+ s more/g)!.length).toBeGreaterThanOrEqual(2);
    expect(secretLeaks(ghcr.password!, b, r)).toEqual([]);
  }, 120_000);
});

describe.runIf(ON_SYSTEM_ENGINE)("pull_timeout", () => {
  it("on the total timeout: a pull that takes longer than pullTimeoutSeconds, retried, then reported", async () => {
    const repo = `acme/total-${uid()}`;
    await pushRandomImage(quay.push, repo, "1", { layers: 1, bytes: 512 * 1024 });
    const b = box({ config: { pullTimeoutSeconds: 2, pullInactivityTimeoutSeconds: 60, pullRetries: 1 } });
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "s", image: `${stall.host}/${repo}:1` }]))]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/pull_timeout \(pulling stall\.registry\.test\/acme\/total-\w+:1 took longer than the total timeout of 2 s\); retrying, 1 retry left/);
    expect(r.stdout).toMatch(/error: service s \(.*\): pull_timeout \(retryable; 2 attempts failed, the retries are used up\)\n {2}reported: pulling .* took longer than the total timeout of 2 s/);
    expect(r.ms).toBeGreaterThanOrEqual(4000);
    expect(r.ms).toBeLessThan(20_000);
  });
});

const HEX = "[0-9a-f]{64}";
/** Docker's words for what the engine found, per image store (as in test/fixtures/engine-texts.json). */
const WORDS = {
  classic: {
    diskFull: /^write \/tmp\/sbx-df-\w+\/data\/tmp\/GetImageBlob\d+: no space left on device$/,
    tamperedManifest: new RegExp(`^manifest verification failed for digest sha256:${HEX}$`),
    tamperedLayer: new RegExp(`^filesystem layer verification failed for digest sha256:${HEX}$`),
    badGateway: /^received unexpected HTTP status: 502 Bad Gateway$/,
  },
  containerd: {
    // The disk runs out while a layer downloads into the content store, or, when a layer's unpacking
    // overlaps the next one's download (seen in full runs on a busy machine), while it is extracted:
    // in containerd 2's words on dockerd 28.5 (core/unpack: "failed to extract layer (<media type>
    // <digest>) to <snapshotter> as <key>"), in containerd 1.7's on dockerd 26.1
    // (pkg/unpack/unpacker.go: "failed to extract layer <diff ID>").
    diskFull: new RegExp(
      `^(failed to copy: failed to send write: write /tmp/sbx-df-\\w+/data/containerd/daemon/io\\.containerd\\.content\\.v1\\.content/ingest/${HEX}/data` +
        `|failed to extract layer (\\(application/vnd\\.docker\\.image\\.rootfs\\.diff\\.tar\\.gzip sha256:${HEX}\\) to overlayfs as "extract-\\d+-\\w+ sha256:${HEX}"|sha256:${HEX}): ` +
        `mount callback failed on /tmp/sbx-df-\\w+/data/containerd/daemon/tmpmounts/containerd-mount\\d+: write /tmp/sbx-df-\\w+/data/containerd/daemon/tmpmounts/containerd-mount\\d+/layer-\\w+\\.bin)` +
        `: no space left on device(: unknown)?$`,
    ),
    tamperedManifest: new RegExp(`^failed commit on ref "manifest-sha256:${HEX}": commit failed: "manifest-sha256:${HEX}" failed size validation: \\d+ != \\d+: failed precondition$`),
    tamperedLayer: new RegExp(`^failed commit on ref "layer-sha256:${HEX}": commit failed: unexpected commit digest sha256:${HEX}, expected sha256:${HEX}: failed precondition$`),
    badGateway: /^(unknown: )?failed to resolve reference "ghcr\.io\/acme\/gw-\w+:1": unexpected status from HEAD request to http:\/\/ghcr\.io\/v2\/acme\/gw-\w+\/manifests\/1: 502 Bad Gateway$/,
  },
}[stack.engine.store];

type Manifests = { manifestHeads: number; manifestGets: number };
const times = (n: number, m: Manifests): Manifests => ({ manifestHeads: n * m.manifestHeads, manifestGets: n * m.manifestGets });
const plus = (...ms: Manifests[]): Manifests => ({ manifestHeads: ms.reduce((n, m) => n + m.manifestHeads, 0), manifestGets: ms.reduce((n, m) => n + m.manifestGets, 0) });
/**
 * How each engine asks the registry for a manifest, measured at the front: the
 * manifest requests of one pull attempt by tag that gets its manifest, of one by
 * digest, of one whose manifest answers 502, and of the agent's question for the
 * registry's words where the engine dropped them (GET /distribution, SPEC §3).
 * The classic store HEADs the tag, then GETs the manifest by the digest the HEAD
 * gave, or by tag after a failed HEAD; the containerd store HEADs the reference
 * twice before its GET, and gives up on a failed HEAD.
 */
const REQUESTS: Record<"classic" | "containerd", Record<"byTag" | "byDigest" | "badGateway" | "askWords", Manifests>> = {
  classic: {
    byTag: { manifestHeads: 1, manifestGets: 1 },
    byDigest: { manifestHeads: 0, manifestGets: 1 },
    badGateway: { manifestHeads: 1, manifestGets: 1 },
    askWords: { manifestHeads: 0, manifestGets: 0 },
  },
  containerd: {
    byTag: { manifestHeads: 2, manifestGets: 1 },
    byDigest: { manifestHeads: 2, manifestGets: 1 },
    badGateway: { manifestHeads: 1, manifestGets: 0 },
    askWords: { manifestHeads: 1, manifestGets: 1 },
  },
};
const ONE = REQUESTS[stack.engine.store];

/** What `run` returned, and the manifest requests it made for `repo` at ghcr.io's front. */
async function counted<T>(repo: string, run: () => Promise<T>): Promise<{ result: T; requests: Manifests }> {
  const before = await requestCounts(ghcr.control, repo);
  const result = await run();
  const after = await requestCounts(ghcr.control, repo);
  return { result, requests: { manifestHeads: after.manifestHeads - before.manifestHeads, manifestGets: after.manifestGets - before.manifestGets } };
}

const MB = 1024 * 1024;

describe("disk_full", () => {
  it("a data root that really fills: Docker's words, the hint, attempted once; the daemon and its disk gone afterwards", async () => {
    const dir = `/tmp/sbx-df-${uid()}`;
    const hosts = Object.fromEntries(Object.values(stack.registries).map((r) => [r.host, r.address]));
    let d: Dockerd | undefined;
    try {
      // Two layers of 32 MB for 48 MB of disk: the engine runs out while it downloads them.
      d = await startDockerd({ dir, hosts, engine: stack.engine, dataRootSize: "48m" });
      const img = await pushRandomImage(ghcr.push, `acme/big-${uid()}`, "1", { layers: 2, bytes: 32 * MB });
      const b = box({ config: { dockerSocket: d.dockerHost, pullRetries: 2 } });
      const file = b.write("spec.json", spec([{ name: "big", image: img.reference, registryCredentialId: "rc_gh" }]));
      const { result: json, requests } = await counted(img.repository, () => b.run(["bake", "--spec", file, "--json"]));
      expect(json.code).toBe(1);
      const e = parseJsonResult(json).services[0]!.error!;
      expect(e).toEqual({ code: "disk_full", message: expect.stringMatching(WORDS.diskFull), hint: expect.stringMatching(/^Docker's disk is full\./), retryable: false, attempts: 1 });
      expect(requests).toEqual(ONE.byTag);
      // Again, on the disk the first bake filled (the containerd store keeps what it downloaded: it
      // then runs out elsewhere, in its own words).
      const human = await b.run(["bake", "--spec", file]);
      expect(human.code).toBe(1);
      expect(human.stdout).toMatch(/error: service big \(ghcr\.io\/acme\/big-\w+:1\): disk_full \(not retryable; attempted once\)\n {2}reported: .*no space left on device.*\n {2}hint: Docker's disk is full\./);
      for (const r of [json, human]) expect(r.stdout + r.stderr).not.toMatch(/retrying/);
      expect(secretLeaks(ghcr.password!, b, [json, human])).toEqual([]);
    } finally {
      // Bounded: SIGTERM, then SIGKILL after 20 s. The tmpfs lives in the daemon's own mount namespace and ends with it.
      await d?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(await leftovers({ dir, pids: [d.pid], addresses: [] })).toEqual([]);
  });
});

describe("digest_mismatch", () => {
  it("a manifest that does not match the pinned digest: Docker's words, attempted once, nothing pulled", async () => {
    const img = await pushRandomImage(ghcr.push, `acme/tampered-${uid()}`, "1");
    await injectFault(ghcr.control, img.repository, "tamper", 100);
    const pinned = `ghcr.io/${img.repository}@${img.digest}`;
    const b = box({ config: { pullRetries: 2 } });
    const file = b.write("spec.json", spec([{ name: "t", image: pinned, registryCredentialId: "rc_gh" }]));
    const { result: r, requests } = await counted(img.repository, () => b.run(["bake", "--spec", file, "--json"]));
    expect(r.code).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e).toEqual({ code: "digest_mismatch", message: expect.stringMatching(WORDS.tamperedManifest), hint: expect.stringMatching(/does not match the pinned digest/), retryable: false, attempts: 1 });
    expect(e.message).toContain(img.digest.slice("sha256:".length));
    expect(r.stderr).not.toMatch(/retrying/);
    expect(requests).toEqual(ONE.byDigest);
    expect(await dockerImage(docker, pinned)).toBeUndefined();
    expect(secretLeaks(ghcr.password!, b, r)).toEqual([]);
  });

  it("a layer that does not match its digest in the manifest: Docker's words, attempted once, nothing pulled", async () => {
    const img = await pushRandomImage(ghcr.push, `acme/tampered-${uid()}`, "1", { layers: 1 });
    await injectFault(ghcr.control, img.repository, "tamperlayer", 100);
    const b = box({ config: { pullRetries: 2 } });
    const file = b.write("spec.json", spec([{ name: "t", image: img.reference, registryCredentialId: "rc_gh" }]));
    const { result: r, requests } = await counted(img.repository, () => b.run(["bake", "--spec", file, "--json"]));
    expect(r.code).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e).toEqual({ code: "digest_mismatch", message: expect.stringMatching(WORDS.tamperedLayer), hint: expect.stringMatching(/does not match/), retryable: false, attempts: 1 });
    expect(e.message).toContain(img.layers[0]!.digest.slice("sha256:".length));
    expect(r.stderr).not.toMatch(/retrying/);
    expect(requests).toEqual(ONE.byTag);
    expect(await dockerImage(docker, img.reference)).toBeUndefined();
    expect(secretLeaks(ghcr.password!, b, r)).toEqual([]);
  });
});

describe("registry_unreachable", () => {
  const gateway = async (faults: number, pullRetries: number, json: boolean) => {
    const img = await pushRandomImage(ghcr.push, `acme/gw-${uid()}`, "1");
    await injectFault(ghcr.control, img.repository, "badgateway", faults);
    const b = box({ config: { pullRetries } });
    const file = b.write("spec.json", spec([{ name: "g", image: img.reference, registryCredentialId: "rc_gh" }]));
    const { result: r, requests } = await counted(img.repository, () => b.run(["bake", "--spec", file, ...(json ? ["--json"] : [])]));
    expect(secretLeaks(ghcr.password!, b, r)).toEqual([]);
    return { img, r, requests };
  };
  const retryLines = (text: string) => text.match(/ghcr\.io\/acme\/gw-\w+:1: registry_unreachable \(.*502 Bad Gateway\); retrying, \d retr(y|ies) left/g) ?? [];

  it("a registry answering 502 past pullRetries: 1 + pullRetries attempts counted at the registry, then Docker's words and the retries used up", async () => {
    const { r, requests } = await gateway(100, 2, false);
    expect(r.code).toBe(1);
    expect(retryLines(r.stdout)).toHaveLength(2);
    expect(r.stdout).toMatch(/retrying, 2 retries left[^]*retrying, 1 retry left/);
    expect(r.stdout).toMatch(/error: service g \(ghcr\.io\/acme\/gw-\w+:1\): registry_unreachable \(retryable; 3 attempts failed, the retries are used up\)\n {2}reported: (.*)\n/);
    expect(/reported: (.*)/.exec(r.stdout)![1]).toMatch(WORDS.badGateway);
    expect(r.stdout).toMatch(/hint: The registry could not be reached, answered with a server error/);
    expect(requests).toEqual(plus(times(3, ONE.badGateway), ONE.askWords));
  });

  it("--json: the same, with attempts 1 + pullRetries and the registry's words", async () => {
    const { r, requests } = await gateway(100, 2, true);
    expect(r.code).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e).toEqual({
      code: "registry_unreachable",
      message: expect.stringMatching(WORDS.badGateway),
      registryMessage: "received unexpected HTTP status: 502 Bad Gateway",
      hint: expect.stringMatching(/5xx/),
      retryable: true,
      attempts: 3,
    });
    expect(retryLines(r.stderr)).toHaveLength(2);
    expect(requests).toEqual(plus(times(3, ONE.badGateway), ONE.askWords));
  });

  it("fewer 502s than pullRetries: the bake succeeds on the third attempt, counted at the registry", async () => {
    // Two failed attempts' worth of 502s: each failed attempt asks for the manifest this many times.
    const perAttempt = ONE.badGateway.manifestHeads + ONE.badGateway.manifestGets;
    const { img, r, requests } = await gateway(2 * perAttempt, 3, true);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(parseJsonResult(r).services[0]).toMatchObject({ status: "pulled", digest: img.digest });
    expect(retryLines(r.stderr)).toHaveLength(2);
    expect(r.stderr).toMatch(/retrying, 3 retries left[^]*retrying, 2 retries left/);
    expect(requests).toEqual(plus(times(2, ONE.badGateway), ONE.byTag));
    expect((await dockerImage(docker, img.reference))?.digests).toContain(img.digest);
  });
});
