// The verifier against canned registry answers. The content is real: a
// multi-platform index signed by cosign 2.5.0 with a P-256, an RSA and an Ed25519
// key, its amd64 manifest signed alone, and a Sigstore bundle made by
// @sigstore/sign and attached by @sigstore/oci under the referrers fallback tag
// (test/fixtures/signatures/registry.json, made by generate.ts beside it). The
// registry's answers around it follow the distribution spec
// (https://github.com/opencontainers/distribution-spec/blob/main/spec.md): 404
// MANIFEST_UNKNOWN for a missing tag, 404 for a registry without the referrers API,
// `Link: <…>; rel="next"` between pages of referrers.
import { createHash, createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { AgentError } from "../errors/agent-error.ts";
import { Scrubber } from "../errors/scrub.ts";
import type { RegistryClientDeps } from "../registry/client.ts";
import type { RegistryFetch } from "../registry/transport.ts";
import fixture from "../../test/fixtures/signatures/registry.json" with { type: "json" };
import type { PolicyKey, SignaturePolicy } from "./types.ts";
import { createSignatureVerifier, reportWords } from "./verifier.ts";

const HOST = "registry.example";
const REPO = fixture.repository;
const SIG_TAG = (digest: string) => `${digest.replace(":", "-")}.sig`;
const FALLBACK_TAG = (digest: string) => digest.replace(":", "-");

function policyKey(pem: string): PolicyKey {
  const key = createPublicKey(pem);
  return { keyId: createHash("sha256").update(key.export({ type: "spki", format: "der" })).digest("hex"), key };
}
const KEYS = { p256: policyKey(fixture.publicKeys.p256), rsa: policyKey(fixture.publicKeys.rsa), ed25519: policyKey(fixture.publicKeys.ed25519) };
const OTHER_KEY = policyKey(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }).toString());

function policy(id: string, ...keys: PolicyKey[]): SignaturePolicy {
  return { id, keys };
}

interface Canned {
  manifests: Map<string, { mediaType: string; body: Buffer }>;
  blobs: Map<string, Buffer>;
  /** Serve the referrers API (two pages) instead of 404. */
  referrers?: boolean;
  /** Requests seen, as `METHOD path`. */
  seen: string[];
  /** Answers that replace the registry's for a path. */
  override?: (url: URL) => Response | undefined;
}

function canned(): Canned {
  return {
    manifests: new Map(Object.entries(fixture.manifests).map(([ref, m]) => [ref, { mediaType: m.mediaType, body: Buffer.from(m.body) }])),
    blobs: new Map(Object.entries(fixture.blobs).map(([d, b]) => [d, Buffer.from(b, "base64")])),
    seen: [],
  };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

function registry(c: Canned): RegistryFetch {
  return async (url, req) => {
    c.seen.push(`${req.method} ${url.pathname}`);
    const o = c.override?.(url);
    if (o) return o;
    const m = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/.exec(url.pathname);
    if (!m || m[1] !== REPO) return json(404, { errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }] });
    const [, , kind, ref] = m as unknown as [string, string, string, string];
    if (kind === "referrers") {
      if (!c.referrers) return new Response("404 page not found\n", { status: 404 });
      const listed = JSON.parse(c.manifests.get(FALLBACK_TAG(ref))?.body.toString() ?? '{"manifests":[]}') as { manifests: unknown[] };
      // Page 1 empty, the bundle on page 2: the client must follow Link.
      if (url.searchParams.get("page") !== "2") return json(200, { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] }, { link: `</v2/${REPO}/referrers/${ref}?page=2>; rel="next"` });
      return json(200, { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: listed.manifests });
    }
    if (kind === "blobs") {
      const b = c.blobs.get(ref);
      return b ? new Response(new Uint8Array(b), { status: 200 }) : json(404, { errors: [{ code: "BLOB_UNKNOWN", message: "blob unknown to registry" }] });
    }
    const s = c.manifests.get(ref);
    if (!s) return json(404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: ref } }] });
    const digest = `sha256:${createHash("sha256").update(s.body).digest("hex")}`;
    return new Response(new Uint8Array(s.body), { status: 200, headers: { "content-type": s.mediaType, "docker-content-digest": digest } });
  };
}

function deps(fetch: RegistryFetch, extra: Partial<RegistryClientDeps> = {}): RegistryClientDeps {
  return {
    fetch,
    registryConfig: async () => ({ indexConfigs: {}, insecureRegistryCIDRs: ["127.0.0.0/8"] }),
    lookup: async () => ["203.0.113.7"],
    scrubber: new Scrubber(),
    ...extra,
  };
}

const signal = () => AbortSignal.timeout(10_000);
const IMAGE = `${HOST}/${REPO}:1`;

describe("classic cosign signatures", () => {
  it("accepts the index signed with the policy's P-256 key; the other keys' layers are rejected with their reason", async () => {
    const report = await createSignatureVerifier(deps(registry(canned()))).verify({ image: IMAGE, policy: policy("sp_release", KEYS.p256), signal: signal() });
    expect(report.digest).toBe(fixture.index);
    expect(report.accepted).toEqual({ policyId: "sp_release", format: "cosign", keyId: KEYS.p256.keyId });
    const cosign = report.candidates.filter((c) => c.format === "cosign");
    expect(cosign.map((c) => c.rejected ?? "accepted")).toEqual([
      "accepted",
      expect.stringContaining("signed by a key not in sp_release"),
      expect.stringContaining("signed by a key not in sp_release"),
    ]);
  });

  it.each([
    ["RSA (PKCS#1 v1.5, SHA-256)", "rsa"],
    ["Ed25519", "ed25519"],
  ] as const)("accepts cosign's signature by an %s key", async (_name, kind) => {
    const report = await createSignatureVerifier(deps(registry(canned()))).verify({ image: IMAGE, policy: policy("sp_k", KEYS[kind]), signal: signal() });
    expect(report.accepted).toEqual({ policyId: "sp_k", format: "cosign", keyId: KEYS[kind].keyId });
  });

  it("rejects every signature when none is by a policy key, and says how many of each form it found", async () => {
    const c = canned();
    c.manifests.delete(FALLBACK_TAG(fixture.index));
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp_release", KEYS.rsa), signal: signal() });
    expect(report.accepted?.keyId).toBe(KEYS.rsa.keyId);
    const none = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp_other", OTHER_KEY), signal: signal() });
    expect(none.accepted).toBeUndefined();
    expect(reportWords(none)).toMatch(new RegExp(`^${IMAGE}@${fixture.index}: 3 cosign signature\\(s\\), 0 Sigstore bundle\\(s\\): cosign sha256:[0-9a-f]{64}: signed by a key not in sp_other`));
  });

  it("verifies a pinned digest: the amd64 manifest, signed alone", async () => {
    const report = await createSignatureVerifier(deps(registry(canned()))).verify({ image: `${HOST}/${REPO}@${fixture.amd64}`, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report.digest).toBe(fixture.amd64);
    expect(report.accepted).toEqual({ policyId: "sp", format: "cosign", keyId: KEYS.p256.keyId });
  });

  it("rejects the index when only its amd64 manifest is signed, naming the platform", async () => {
    const c = canned();
    c.manifests.delete(SIG_TAG(fixture.index));
    c.manifests.delete(FALLBACK_TAG(fixture.index));
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report.accepted).toBeUndefined();
    expect(report.candidates).toEqual([
      { format: "cosign", source: expect.stringMatching(/^sha256:/), rejected: `signs the linux/amd64 manifest ${fixture.amd64}, not the index ${fixture.index} the reference resolves to` },
    ]);
  });

  it("rejects the amd64 manifest's signature moved to the index's tag: the payload names the amd64 digest", async () => {
    const c = canned();
    c.manifests.delete(FALLBACK_TAG(fixture.index));
    c.manifests.set(SIG_TAG(fixture.index), c.manifests.get(SIG_TAG(fixture.amd64))!);
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report.accepted).toBeUndefined();
    expect(report.candidates.map((c) => c.rejected)).toEqual([`payload names ${fixture.amd64} (the linux/amd64 manifest, not the index the reference resolves to)`]);
  });

  it("rejects a payload the registry altered: its bytes do not hash to the layer's digest", async () => {
    const c = canned();
    c.manifests.delete(FALLBACK_TAG(fixture.index));
    const sig = JSON.parse(c.manifests.get(SIG_TAG(fixture.index))!.body.toString()) as { layers: { digest: string }[] };
    const layer = sig.layers[0]!.digest;
    c.blobs.set(layer, Buffer.from(c.blobs.get(layer)!.toString().replace("cosign container image signature", "cosign container image signaturX")));
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report.accepted).toBeUndefined();
    expect(report.candidates[0]?.rejected).toContain("with content whose digest is");
  });

  it("rejects a tampered payload re-hashed into a new layer: the signature does not verify", async () => {
    const c = canned();
    c.manifests.delete(FALLBACK_TAG(fixture.index));
    const sig = JSON.parse(c.manifests.get(SIG_TAG(fixture.index))!.body.toString()) as { layers: { digest: string; size: number }[] };
    const payload = Buffer.from(c.blobs.get(sig.layers[0]!.digest)!.toString().replace(/"optional":null/, '"optional":{"x":"y"}'));
    const digest = `sha256:${createHash("sha256").update(payload).digest("hex")}`;
    c.blobs.set(digest, payload);
    sig.layers = [{ ...sig.layers[0]!, digest, size: payload.length }];
    c.manifests.set(SIG_TAG(fixture.index), { mediaType: "application/vnd.oci.image.manifest.v1+json", body: Buffer.from(JSON.stringify(sig)) });
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report.candidates.map((x) => x.rejected)).toEqual([expect.stringContaining("tampered: the signature does not verify")]);
  });

  it("finds a classic signature attached as a referrer (cosign 2's --registry-referrers-mode=oci-1-1)", async () => {
    const c = canned();
    const sig = c.manifests.get(SIG_TAG(fixture.index))!;
    c.manifests.delete(SIG_TAG(fixture.index));
    const digest = `sha256:${createHash("sha256").update(sig.body).digest("hex")}`;
    c.manifests.set(digest, sig);
    c.manifests.set(FALLBACK_TAG(fixture.index), {
      mediaType: "application/vnd.oci.image.index.v1+json",
      body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [{ mediaType: sig.mediaType, digest, size: sig.body.length, artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json" }] })),
    });
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp", KEYS.ed25519), signal: signal() });
    expect(report.accepted).toEqual({ policyId: "sp", format: "cosign", keyId: KEYS.ed25519.keyId });
    expect(report.candidates).toHaveLength(3);
  });

  it("an unsigned image: no signatures found", async () => {
    const c = canned();
    for (const k of [...c.manifests.keys()]) if (k.startsWith("sha256-")) c.manifests.delete(k);
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: `${HOST}/${REPO}@${fixture.amd64}`, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report).toEqual({ image: `${HOST}/${REPO}@${fixture.amd64}`, digest: fixture.amd64, candidates: [] });
    expect(reportWords(report)).toBe(`${HOST}/${REPO}@${fixture.amd64}: 0 cosign signature(s), 0 Sigstore bundle(s): no signatures found`);
  });
});

describe("Sigstore bundles", () => {
  const onlyBundles = () => {
    const c = canned();
    c.manifests.delete(SIG_TAG(fixture.index));
    return c;
  };

  it("accepts the bundle found under the fallback tag, where the registry has no referrers API (404)", async () => {
    const c = onlyBundles();
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report.accepted).toEqual({ policyId: "sp", format: "sigstore-bundle", keyId: KEYS.p256.keyId });
    expect(c.seen).toContain(`GET /v2/${REPO}/referrers/${fixture.index}`);
    expect(c.seen).toContain(`GET /v2/${REPO}/manifests/${FALLBACK_TAG(fixture.index)}`);
  });

  it("reads every page of the referrers API and does not ask for the fallback tag", async () => {
    const c = onlyBundles();
    c.referrers = true;
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report.accepted?.format).toBe("sigstore-bundle");
    expect(c.seen.filter((s) => s.includes("/referrers/"))).toHaveLength(2);
    expect(c.seen).not.toContain(`GET /v2/${REPO}/manifests/${FALLBACK_TAG(fixture.index)}`);
  });

  it("never asks for a listed signature whose digest is not one (a path such as ../manifests/1), and says so", async () => {
    const c = onlyBundles();
    const index = JSON.parse(c.manifests.get(FALLBACK_TAG(fixture.index))!.body.toString()) as { manifests: { digest: string }[] };
    index.manifests.unshift({ ...index.manifests[0]!, digest: "../manifests/1" });
    c.manifests.set(FALLBACK_TAG(fixture.index), { mediaType: "application/vnd.oci.image.index.v1+json", body: Buffer.from(JSON.stringify(index)) });
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report.candidates[0]).toEqual({ format: "sigstore-bundle", source: "../manifests/1", rejected: "listed with a digest that is not one" });
    expect(report.accepted?.format).toBe("sigstore-bundle");
    expect(c.seen.filter((x) => x.includes(".."))).toEqual([]);
  });

  it("a listed bundle the registry no longer serves (blob unknown) is one rejected candidate, not the end of the verification", async () => {
    const c = canned();
    const index = JSON.parse(c.manifests.get(FALLBACK_TAG(fixture.index))!.body.toString()) as { manifests: { digest: string }[] };
    const artifact = JSON.parse(c.manifests.get(index.manifests[0]!.digest)!.body.toString()) as { layers: { digest: string }[] };
    c.blobs.delete(artifact.layers[0]!.digest);
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report.accepted).toEqual({ policyId: "sp", format: "cosign", keyId: KEYS.p256.keyId });
    expect(report.candidates).toContainEqual({ format: "sigstore-bundle", source: index.manifests[0]!.digest, rejected: expect.stringContaining("listed, but the registry does not serve it") });
  });

  it("rejects the bundle for a key not in the policy", async () => {
    const report = await createSignatureVerifier(deps(registry(onlyBundles()))).verify({ image: IMAGE, policy: policy("sp_x", KEYS.rsa), signal: signal() });
    expect(report.candidates).toEqual([{ format: "sigstore-bundle", source: expect.stringMatching(/^sha256:/), rejected: expect.stringContaining("signed by a key not in sp_x") }]);
  });

  it("verifies a transparency-log entry a bundle carries, and rejects the bundle when it does not verify", async () => {
    const c = onlyBundles();
    const index = JSON.parse(c.manifests.get(FALLBACK_TAG(fixture.index))!.body.toString()) as { manifests: { digest: string }[] };
    const artifact = JSON.parse(c.manifests.get(index.manifests[0]!.digest)!.body.toString()) as { layers: { digest: string; size: number }[] };
    const bundle = JSON.parse(c.blobs.get(artifact.layers[0]!.digest)!.toString()) as { verificationMaterial: { tlogEntries: unknown[] } };
    // An entry of a log the trusted root does not know (the shape of Rekor's, https://github.com/sigstore/protobuf-specs sigstore_rekor.proto).
    bundle.verificationMaterial.tlogEntries = [
      {
        logIndex: "1",
        logId: { keyId: Buffer.alloc(32, 7).toString("base64") },
        kindVersion: { kind: "dsse", version: "0.0.1" },
        integratedTime: "1700000000",
        inclusionPromise: { signedEntryTimestamp: Buffer.alloc(70, 1).toString("base64") },
        inclusionProof: { logIndex: "1", rootHash: Buffer.alloc(32, 2).toString("base64"), treeSize: "2", hashes: [], checkpoint: { envelope: "rekor.example - 1\n2\nAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\n\n— rekor.example AAAA\n" } },
        canonicalizedBody: Buffer.from("{}").toString("base64"),
      },
    ];
    const bytes = Buffer.from(JSON.stringify(bundle));
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    c.blobs.set(digest, bytes);
    artifact.layers = [{ ...artifact.layers[0]!, digest, size: bytes.length }];
    const artifactBytes = Buffer.from(JSON.stringify(artifact));
    const artifactDigest = `sha256:${createHash("sha256").update(artifactBytes).digest("hex")}`;
    c.manifests.set(artifactDigest, { mediaType: "application/vnd.oci.image.manifest.v1+json", body: artifactBytes });
    index.manifests = [{ ...index.manifests[0]!, digest: artifactDigest }];
    c.manifests.set(FALLBACK_TAG(fixture.index), { mediaType: "application/vnd.oci.image.index.v1+json", body: Buffer.from(JSON.stringify(index)) });
    const report = await createSignatureVerifier(deps(registry(c))).verify({ image: IMAGE, policy: policy("sp", KEYS.p256), signal: signal() });
    expect(report.accepted).toBeUndefined();
    expect(report.candidates[0]?.rejected).toMatch(/transparency-log entry does not verify \(TLOG_/);
  });
});

describe("the registry's answers", () => {
  it("a tag the registry does not know is image_not_found, in the registry's words", async () => {
    const err = await createSignatureVerifier(deps(registry(canned())))
      .verify({ image: `${HOST}/${REPO}:nope`, policy: policy("sp", KEYS.p256), signal: signal() })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe("image_not_found");
    expect((err as AgentError).message).toBe(`GET https://${HOST}/v2/${REPO}/manifests/nope: 404: manifest unknown: manifest unknown`);
  });
});
