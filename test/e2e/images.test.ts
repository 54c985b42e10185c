// Images as registries really hold them, on every engine and image store: an OCI
// image index and a Docker manifest list (linux/amd64, linux/arm64 and buildx's
// attestation manifest) pulled by tag, by the index digest and by the amd64
// manifest's digest; an OCI image manifest; zstd-compressed layers; and, on 20.10,
// a large image whose progress a person can follow in Packer's log. For each form
// the digest the agent reports (--json, manifest.json, service.pulled) is the one a
// later pin names, and that pin is `present`: no request reaches the registry. What
// the engine cannot use — an index without its platform, zstd on 20.10, a corrupt
// layer — fails in the engine's words with a hint that says what to do.
import Docker from "dockerode";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, inject, it } from "vitest";
import { pushHelmChart, pushImage, pushMultiPlatformImage, pushRandomImage, randomLayer, type PushedMultiPlatform } from "../stack/images.ts";
import { requestCounts, slowBlobs } from "../stack/registry-front.ts";
import type { RegistryInfo } from "../stack/stack.ts";
import { dockerImage, newBox, parseJsonResult, PREFIX, secretLeaks, uid, type Box, type RunResult } from "./harness.ts";
import { awsAndControlPlane } from "./lifecycle.ts";

const stack = inject("stack");
const { engine } = stack;
const containerdStore = engine.store === "containerd";
const docker = new Docker({ socketPath: stack.socketPath });
const { aws, cp, boxes } = awsAndControlPlane(() => aws.putParameter(`${PREFIX}rc_gh`, GH_SECRET));
const { ghcr, quay } = stack.registries;
const GH_SECRET = ghcr.password!;

const GH = { id: "rc_gh", type: "token", label: "GHCR (read packages)", registry: "ghcr.io", username: "acme-bot" };

/** Where each image lives: quay anonymously, ghcr with a token credential from SSM. */
interface Where {
  reg: RegistryInfo;
  credential?: typeof GH;
}
const QUAY: Where = { reg: quay };
const GHCR: Where = { reg: ghcr, credential: GH };

interface Baked {
  r: RunResult;
  service: ReturnType<typeof parseJsonResult>["services"][number];
  manifest: { services: { name: string; image: string; imageId: string; digest: string }[] };
  pulledEvent: Record<string, unknown> | undefined;
}

/** One bake of one image with --json, reporting to the control plane; the service's result, manifest entry and event. */
async function bake(where: Where, image: string, b = newTrackedBox()): Promise<Baked> {
  const s = {
    bakeId: `bk_${uid()}`,
    orgId: "org_123",
    registryCredentials: where.credential ? [where.credential] : [],
    services: [{ name: "app", image, ...(where.credential ? { registryCredentialId: where.credential.id } : {}) }],
  };
  const r = await b.run(["bake", "--spec", b.write(`spec-${s.bakeId}.json`, s), "--json"]);
  const out = parseJsonResult(r);
  const service = out.services[0]!;
  const manifest = r.code === 0 ? (JSON.parse(readFileSync(path.join(b.stateDir, "manifest.json"), "utf8")) as Baked["manifest"]) : { services: [] };
  const pulledEvent = cp.deliveries.find((d) => d.bakeId === s.bakeId && d.body["type"] === "service.pulled")?.body;
  if (where.credential) expect(secretLeaks(GH_SECRET, b, r, cp.deliveries.filter((d) => d.bakeId === s.bakeId).map((d) => d.body))).toEqual([]);
  return { r, service, manifest, pulledEvent };
}

function newTrackedBox(): Box {
  const b = newBox(stack, aws, { controlPlane: cp, config: { pullRetries: 0 } });
  boxes.push(b);
  return b;
}

/** The same digest everywhere the agent reports it: --json, the manifest, the service.pulled event. */
function expectReported(baked: Baked, status: "pulled" | "present", digest: string): void {
  expect(baked.r.code, baked.r.stdout + baked.r.stderr).toBe(0);
  expect(baked.service).toMatchObject({ status, digest });
  expect(baked.manifest.services[0]).toMatchObject({ name: "app", digest, imageId: baked.service.imageId });
  expect(baked.pulledEvent).toMatchObject({ digest, ...(status === "present" ? { cached: true } : {}) });
}

/**
 * Bakes `pin` again: it must be `present` with `digest` and the same image ID, and
 * reach neither the registry (not one manifest or blob request) nor AWS.
 */
async function expectPresent(where: Where, repository: string, pin: string, digest: string, imageId: string): Promise<void> {
  const before = await requestCounts(where.reg.control, repository);
  const ssmBefore = aws.callsTo("ssm:GetParameter").length;
  const again = await bake(where, pin);
  expectReported(again, "present", digest);
  expect(again.service.imageId).toBe(imageId);
  expect(await requestCounts(where.reg.control, repository)).toEqual(before);
  expect(aws.callsTo("ssm:GetParameter").length).toBe(ssmBefore);
}

const amd64 = (img: PushedMultiPlatform) => img.platforms.amd64!;

/** The image ID Docker itself reports for `ref`. */
async function idOf(ref: string): Promise<string> {
  const i = await dockerImage(docker, ref);
  expect(i, `Docker has no ${ref}`).toBeDefined();
  return i!.id;
}

describe.each([
  { kind: "oci-index" as const, where: QUAY, label: "an OCI image index (anonymous)" },
  { kind: "docker-list" as const, where: GHCR, label: "a Docker manifest list (token credential)" },
])("multi-platform: $label with linux/amd64, linux/arm64 and an attestation manifest", ({ kind, where }) => {
  const push = (name: string) => pushMultiPlatformImage(where.reg.push, `acme/${name}-${uid()}`, "1", { kind });
  const pinned = (img: PushedMultiPlatform, digest: string) => `${where.reg.host}/${img.repository}@${digest}`;

  it("by tag: reports the index digest, the one a later pin names, and that pin is present", async () => {
    const img = await push("multi-tag");
    const first = await bake(where, img.reference);
    // Both stores record what the tag named — the index — and that is what a pin must name to
    // get this image again, on any platform.
    expectReported(first, "pulled", img.digest);
    expect(first.service.imageId).toBe(await idOf(img.reference));
    // The engine pulled the amd64 image: the classic store's ID is its config, the containerd store's the index.
    expect(first.service.imageId).toBe(containerdStore ? img.digest : amd64(img).configDigest);
    expect((await dockerImage(docker, img.reference))!.digests).toContain(img.digest);
    await expectPresent(where, img.repository, pinned(img, first.service.digest!), img.digest, first.service.imageId!);
  });

  it("pinned by the index digest: reports that digest, and the same pin is present", async () => {
    const img = await push("multi-index");
    const pin = pinned(img, img.digest);
    const first = await bake(where, pin);
    expectReported(first, "pulled", img.digest);
    expect(first.service.imageId).toBe(await idOf(pin));
    expect(first.service.imageId).toBe(containerdStore ? img.digest : amd64(img).configDigest);
    await expectPresent(where, img.repository, pin, img.digest, first.service.imageId!);
  });

  it("pinned by the amd64 manifest's digest: reports that digest, and the same pin is present", async () => {
    const img = await push("multi-amd64");
    const pin = pinned(img, amd64(img).digest);
    const first = await bake(where, pin);
    expectReported(first, "pulled", amd64(img).digest);
    expect(first.service.imageId).toBe(await idOf(pin));
    expect(first.service.imageId).toBe(containerdStore ? amd64(img).digest : amd64(img).configDigest);
    await expectPresent(where, img.repository, pin, amd64(img).digest, first.service.imageId!);
  });

  it("by tag after a pin on the amd64 manifest: reports the index digest, not the platform's", async () => {
    const img = await push("multi-both");
    expectReported(await bake(where, pinned(img, amd64(img).digest)), "pulled", amd64(img).digest);
    const byTag = await bake(where, img.reference);
    expectReported(byTag, "pulled", img.digest);
    // The classic store files both digests under the one image it has, the containerd store
    // an image per digest: either way the tag's digest is the index's.
    expect((await dockerImage(docker, img.reference))!.digests.sort()).toEqual(containerdStore ? [img.digest] : [img.digest, amd64(img).digest].sort());
    await expectPresent(where, img.repository, pinned(img, img.digest), img.digest, byTag.service.imageId!);
  });
});

describe("an image index without this engine's platform (linux/amd64)", () => {
  it("fails with image_not_found in the engine's words and a hint about the platform, not a typo or a private image", async () => {
    const img = await pushMultiPlatformImage(quay.push, `acme/arm-only-${uid()}`, "1", { kind: "oci-index", platforms: ["arm64"] });
    const baked = await bake(QUAY, img.reference);
    expect(baked.r.code).toBe(1);
    expect(baked.service.status).toBe("failed");
    const e = baked.service.error!;
    expect(e).toMatchObject({ code: "image_not_found", retryable: false });
    // Classic store: "no matching manifest for linux/amd64 in the manifest list entries";
    // containerd store: "no match for platform in manifest: not found".
    expect(e.message).toMatch(/no matching manifest for linux\/amd64|no match for platform in manifest/);
    expect(e.hint).toMatch(/no manifest for this box's platform/);
    // The registry served the index: the words are the engine's, not the registry's.
    expect(e.registryMessage).toBeUndefined();
  });
});

describe("an OCI image manifest", () => {
  it("by tag: reports the manifest digest, and a pin on it is present", async () => {
    const img = await pushRandomImage(quay.push, `acme/oci-${uid()}`, "1", { format: "oci", layers: 2 });
    const first = await bake(QUAY, img.reference);
    expectReported(first, "pulled", img.digest);
    expect(first.service.imageId).toBe(containerdStore ? img.digest : img.imageId);
    await expectPresent(QUAY, img.repository, `${quay.host}/${img.repository}@${img.digest}`, img.digest, first.service.imageId!);
  });
});

/** Docker reads zstd layers since 23.0 (moby/moby#41759), on both stores; 20.10 reads them as a plain tar. */
const readsZstd = engine.version !== "20.10";

describe("zstd-compressed layers (OCI)", () => {
  const push = () => pushRandomImage(quay.push, `acme/zstd-${uid()}`, "1", { compression: "zstd", layers: 2, bytes: 256 * 1024 });

  it.runIf(readsZstd)("are pulled, reported by manifest digest, and a pin on them is present", async () => {
    const img = await push();
    const first = await bake(QUAY, img.reference);
    expectReported(first, "pulled", img.digest);
    expect(first.service.imageId).toBe(containerdStore ? img.digest : img.imageId);
    await expectPresent(QUAY, img.repository, `${quay.host}/${img.repository}@${img.digest}`, img.digest, first.service.imageId!);
  });

  it.runIf(!readsZstd)("fail on an engine that cannot read them, in the engine's words, with what to do", async () => {
    const img = await push();
    const b = newTrackedBox();
    const baked = await bake(QUAY, img.reference, b);
    expect(baked.r.code).toBe(1);
    const e = baked.service.error!;
    expect(e).toMatchObject({ code: "image_unsupported", retryable: false });
    expect(e.message).toBe("failed to register layer: ApplyLayer exit status 1 stdout:  stderr: archive/tar: invalid tar header");
    expect(e.hint).toMatch(/Docker before 23\.0 .* cannot read zstd-compressed layers/);
    expect(e.hint).toMatch(/gzip layers.*or upgrade Docker/);
    expect(e.hint).not.toMatch(/bug in slothbox-agent/);
    expect(e.registryMessage).toBeUndefined();
    expect(existsSync(path.join(b.stateDir, "manifest.json"))).toBe(false);
  });
});

describe("a layer no engine can unpack (pushed corrupt)", () => {
  it("fails as image_unsupported in the engine's words, with the unpack hint rather than the agent's-bug one", async () => {
    // A gzip layer without its first bytes: the registry serves it under its own digest, the engine cannot read it.
    const layer = randomLayer(256 * 1024);
    const blob = layer.blob.subarray(16);
    const img = await pushImage(quay.push, `acme/corrupt-${uid()}`, "1", [{ ...layer, blob, digest: "sha256:" + createHash("sha256").update(blob).digest("hex") }]);
    const baked = await bake(QUAY, img.reference);
    expect(baked.r.code).toBe(1);
    const e = baked.service.error!;
    expect(e).toMatchObject({ code: "image_unsupported", retryable: false });
    // Classic store: "failed to register layer: …"; containerd store: "failed to extract layer …".
    expect(e.message).toMatch(/^failed to (register|extract) layer.*archive\/tar: invalid tar header/);
    expect(e.hint).toMatch(/cannot unpack one of its layers/);
    expect(e.hint).not.toMatch(/bug in slothbox-agent/);
    expect(e.registryMessage).toBeUndefined();
  });
});

// The classic store refuses a config media type it does not know; the containerd store keeps
// any content a registry serves, and pulls the chart without a word.
describe.runIf(!containerdStore)("an OCI artifact that is no image (a Helm chart), on the classic store", () => {
  it("fails as image_unsupported in the engine's words, with what to check, not as the agent's bug", async () => {
    const chart = await pushHelmChart(quay.push, `acme/chart-${uid()}`, "0.1.0");
    const baked = await bake(QUAY, chart.reference);
    expect(baked.r.code).toBe(1);
    const e = baked.service.error!;
    expect(e).toMatchObject({ code: "image_unsupported", retryable: false, message: "unsupported media type application/vnd.cncf.helm.config.v1+json" });
    expect(e.hint).toMatch(/no container image Docker can run/);
    expect(e.registryMessage).toBeUndefined();
  });
});

describe("a large image", () => {
  /** 12 layers of 18 MB of random bytes: 216 MB that do not compress, generated in a few seconds. */
  const LAYERS = 12;
  const LAYER_BYTES = 18_000_000;
  /** Each blob at 5 MB/s (dockerd fetches three at once): a pull of ~15 s, as from a registry over a real network. */
  const BLOB_BYTES_PER_SECOND = 5_000_000;

  // The progress lines are the agent's on every engine, and the classic store counts bytes: 20.10
  // alone proves them, and the matrix is spared a 216 MB push and pull per engine.
  it.runIf(engine.version === "20.10")(
    "shows progress a person can follow in Packer's log: a line every few seconds, bytes and layers advancing",
    async () => {
      const img = await pushImage(quay.push, `acme/large-${uid()}`, "1", Array.from({ length: LAYERS }, () => randomLayer(LAYER_BYTES)));
      expect(img.bytes).toBeGreaterThanOrEqual(200_000_000);
      await slowBlobs(quay.control, img.repository, BLOB_BYTES_PER_SECOND, LAYERS + 1);
      const b = newTrackedBox();
      const s = { bakeId: `bk_${uid()}`, orgId: "org_123", registryCredentials: [], services: [{ name: "large", image: img.reference }] };
      const r = await b.run(["bake", "--spec", b.write("spec.json", s)], { timeoutMs: 150_000 });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      // Packer reads line by line: no carriage returns, no terminal tricks.
      expect(r.stdout).not.toMatch(/\r/);

      const ref = img.reference.replace(/[.]/g, "\\.");
      const progress = [...r.stdout.matchAll(new RegExp(`^\\[\\s*([\\d.]+)s\\]   ${ref}: (?:([\\d.]+) MB (?:so far|/ ([\\d.]+) MB \\((\\d+)%\\)), )?(\\d+)/(\\d+) layers downloaded, (\\d+)/(\\d+) unpacked$`, "gm"))].map((m) => ({
        at: Number(m[1]),
        mb: Number(m[2] ?? "0"),
        totalMb: m[3] === undefined ? undefined : Number(m[3]),
        downloaded: Number(m[5]),
        layers: Number(m[6]),
        unpacked: Number(m[7]),
      }));
      const lines = progress.map((p) => JSON.stringify(p)).join("\n");
      expect(progress.length, r.stdout).toBeGreaterThanOrEqual(3);
      // Every line counts every layer: none before the engine has named them all.
      expect(progress.every((p) => p.layers === LAYERS), lines).toBe(true);
      // A line every few seconds, not a burst, and not one line at the end.
      for (const [i, p] of progress.entries()) expect(p.at - (i === 0 ? 0 : progress[i - 1]!.at), lines).toBeGreaterThanOrEqual(2.9);
      // Bytes while downloading, then layers unpacked: never backwards, and moving.
      for (const [i, p] of progress.entries()) {
        if (i === 0) continue;
        const prev = progress[i - 1]!;
        expect(p.mb >= prev.mb && p.downloaded >= prev.downloaded && p.unpacked >= prev.unpacked, lines).toBe(true);
        expect(p.mb > prev.mb || p.downloaded > prev.downloaded || p.unpacked > prev.unpacked, lines).toBe(true);
      }
      expect(progress.some((p) => p.mb > 0 && p.mb < img.bytes / 1e6), lines).toBe(true);
      // A total, and so a percentage, only once it is the whole image's.
      for (const p of progress) if (p.totalMb !== undefined) expect(p.totalMb, lines).toBeCloseTo(img.bytes / 1e6, 0);
      expect(r.stdout).toMatch(new RegExp(`pulled ${ref} ${img.digest} in [\\d.]+s`));
      const inspected = await docker.getImage(img.reference).inspect();
      expect(inspected.RootFS.Layers).toHaveLength(LAYERS);
    },
    240_000,
  );
});
