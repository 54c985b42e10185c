// The signature verifier (docs/reference.md §2a steps 1–3) against the stack's
// real registries — distribution 2.8 behind the fronts of quay.io, ghcr.io (Bearer
// token challenges), ECR (Basic, user AWS) and Docker Hub (verified TLS under a CA
// given the way dockerd's certs.d gives it) — with signatures made by real
// third-party signers: cosign 2.5.0 for the classic `.sig` form, @sigstore/sign +
// @sigstore/oci for cosign 3's Sigstore bundles (test/stack/signing.ts). The
// verifier resolves the registries' real names from the stack's hosts file, as the
// stack's dockerd does, and asks that dockerd which registries are insecure.
import { lookup as dnsLookup } from "node:dns";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { LookupFunction } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDockerPort } from "../../agent/docker/port.ts";
import { AgentError } from "../../agent/errors/agent-error.ts";
import { Scrubber } from "../../agent/errors/scrub.ts";
import { ProxyRoutes } from "../../agent/net/proxy.ts";
import { nodeRegistryDeps } from "../../agent/registry/node-deps.ts";
import type { SignaturePolicy, VerificationReport } from "../../agent/signatures/types.ts";
import { createSignatureVerifier, reportWords } from "../../agent/signatures/verifier.ts";
import { startForwardProxy } from "../stack/forward-proxy.ts";
import { pushMultiPlatformImage, pushRandomImage } from "../stack/images.ts";
import { attachBundle, copySignature, cosignSign, cosignStatement, makeBundle, makeKey, type TestKey } from "../stack/signing.ts";
import { uid } from "./harness.ts";

const stack = inject("stack");
const R = stack.registries;
const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-sig-"));

/** The stack's hosts file, the one its dockerd resolves the registries' names with. */
function stackLookup(): LookupFunction {
  const hosts = new Map<string, string>();
  for (const line of readFileSync(path.join(stack.dir, "e0/hosts"), "utf8").split("\n")) {
    const [address, ...names] = line.trim().split(/\s+/);
    for (const n of names) if (address) hosts.set(n.toLowerCase(), address);
  }
  return ((host: string, options: unknown, callback: unknown) => {
    const cb = (typeof options === "function" ? options : callback) as (err: Error | null, a?: unknown, f?: number) => void;
    const all = typeof options === "object" && options !== null && (options as { all?: boolean }).all;
    const address = hosts.get(host.toLowerCase());
    if (!address) return dnsLookup("name.invalid", () => cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" })));
    const family = address.includes(":") ? 6 : 4;
    return all ? cb(null, [{ address, family }]) : cb(null, address, family);
  }) as LookupFunction;
}

const certsDir = path.join(dir, "certs.d");
mkdirSync(path.join(certsDir, "registry-1.docker.io"), { recursive: true });
writeFileSync(path.join(certsDir, "registry-1.docker.io/ca.crt"), R.dockerhub.push.ca ?? "");

const scrubber = new Scrubber();
const docker = createDockerPort(stack.socketPath);
const verifier = createSignatureVerifier(
  nodeRegistryDeps({ routes: new ProxyRoutes({}), registryConfig: (signal) => docker.registryConfig(signal), scrubber, certsDir, lookup: stackLookup() }),
);

const release = makeKey("p256");
const other = makeKey("p256");
const second = makeKey("p384");
const rsa = makeKey("rsa");
const ed = makeKey("ed25519");

function policy(id: string, ...keys: TestKey[]): SignaturePolicy {
  return { id, keys: keys.map((k) => ({ keyId: k.keyId, key: k.publicKey })) };
}

const signal = () => AbortSignal.timeout(120_000);
const ghcrAuth = { username: R.ghcr.user!, password: R.ghcr.password!, serverAddress: "ghcr.io" };
const ecrAuth = { username: R.ecr.user!, password: R.ecr.password!, serverAddress: R.ecr.host };

async function pushed(target = R.quay, namespace = "acme") {
  const repository = `${namespace}/sig-${uid()}`;
  const image = await pushRandomImage(target.push, repository, "1", { layers: 1, bytes: 1024 });
  return { repository, digest: image.digest, ref: `${target.host}/${repository}:1` };
}

function rejections(report: VerificationReport): string[] {
  return report.candidates.map((c) => c.rejected ?? "accepted");
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("classic cosign signatures (cosign 2.5.0)", () => {
  it("accepts an image signed with the policy's key, naming the digest the tag resolves to", async () => {
    const img = await pushed();
    await cosignSign(R.quay.push, img.repository, img.digest, release);
    const report = await verifier.verify({ image: img.ref, policy: policy("sp_release", release), signal: signal() });
    expect(report.digest).toBe(img.digest);
    expect(report.accepted).toEqual({ policyId: "sp_release", format: "cosign", keyId: release.keyId });
    expect(report.candidates).toEqual([{ format: "cosign", source: expect.stringMatching(/^sha256:/) }]);
  });

  it("rejects an unsigned image: no signatures found", async () => {
    const img = await pushed();
    const report = await verifier.verify({ image: img.ref, policy: policy("sp_release", release), signal: signal() });
    expect(report.accepted).toBeUndefined();
    expect(report.candidates).toEqual([]);
    expect(reportWords(report)).toContain(`${img.ref}@${img.digest}: 0 cosign signature(s), 0 Sigstore bundle(s): no signatures found`);
  });

  it("rejects a signature by a key not in the policy", async () => {
    const img = await pushed();
    await cosignSign(R.quay.push, img.repository, img.digest, other);
    const report = await verifier.verify({ image: img.ref, policy: policy("sp_release", release), signal: signal() });
    expect(report.accepted).toBeUndefined();
    expect(rejections(report)).toEqual([expect.stringContaining("signed by a key not in sp_release")]);
  });

  it("rejects another image's signature copied to this digest: the payload names the other digest", async () => {
    const a = await pushed();
    const b = await pushRandomImage(R.quay.push, a.repository, "2", { layers: 1, bytes: 1024 });
    await cosignSign(R.quay.push, a.repository, a.digest, release);
    await copySignature(R.quay.push, a.repository, a.digest, b.digest);
    const report = await verifier.verify({ image: `quay.io/${a.repository}:2`, policy: policy("sp_release", release), signal: signal() });
    expect(report.digest).toBe(b.digest);
    expect(report.accepted).toBeUndefined();
    expect(rejections(report)).toEqual([`payload names ${a.digest}`]);
  });

  it("rejects a tampered payload: the signature does not verify", async () => {
    const a = await pushed();
    const b = await pushRandomImage(R.quay.push, a.repository, "2", { layers: 1, bytes: 1024 });
    await cosignSign(R.quay.push, a.repository, a.digest, release);
    // The attacker rewrites A's signed payload to name B, keeping A's signature.
    await copySignature(R.quay.push, a.repository, a.digest, b.digest, (p) => Buffer.from(p.toString("utf8").replace(a.digest, b.digest)));
    const report = await verifier.verify({ image: `quay.io/${a.repository}:2`, policy: policy("sp_release", release), signal: signal() });
    expect(report.accepted).toBeUndefined();
    expect(rejections(report)).toEqual([expect.stringContaining("tampered: the signature does not verify")]);
  });

  it("rejects a multi-platform image whose platform manifest alone is signed, and says so", async () => {
    const repository = `acme/sig-${uid()}`;
    const img = await pushMultiPlatformImage(R.quay.push, repository, "1", { kind: "oci-index" });
    await cosignSign(R.quay.push, repository, img.platforms.amd64!.digest, release);
    const report = await verifier.verify({ image: `quay.io/${repository}:1`, policy: policy("sp_release", release), signal: signal() });
    expect(report.digest).toBe(img.digest);
    expect(report.accepted).toBeUndefined();
    expect(rejections(report)).toEqual([`signs the linux/amd64 manifest ${img.platforms.amd64!.digest}, not the index ${img.digest} the reference resolves to`]);
  });

  it("accepts a multi-platform image whose index is signed", async () => {
    const repository = `acme/sig-${uid()}`;
    const img = await pushMultiPlatformImage(R.quay.push, repository, "1", { kind: "docker-list" });
    await cosignSign(R.quay.push, repository, img.digest, release);
    const report = await verifier.verify({ image: `quay.io/${repository}:1`, policy: policy("sp_release", release), signal: signal() });
    expect(report.digest).toBe(img.digest);
    expect(report.accepted?.keyId).toBe(release.keyId);
  });

  it("verifies a pinned digest like any other reference", async () => {
    const img = await pushed();
    await cosignSign(R.quay.push, img.repository, img.digest, release);
    const report = await verifier.verify({ image: `quay.io/${img.repository}@${img.digest}`, policy: policy("sp_release", release), signal: signal() });
    expect(report.digest).toBe(img.digest);
    expect(report.accepted?.format).toBe("cosign");
  });

  it("accepts a signature by the second key of a two-key policy, and names that key", async () => {
    const img = await pushed();
    await cosignSign(R.quay.push, img.repository, img.digest, second);
    const report = await verifier.verify({ image: img.ref, policy: policy("sp_two", release, second), signal: signal() });
    expect(report.accepted).toEqual({ policyId: "sp_two", format: "cosign", keyId: second.keyId });
  });

  it.each([
    ["RSA", rsa],
    ["Ed25519", ed],
  ])("accepts a signature by an %s key", async (_name, key) => {
    const img = await pushed();
    await cosignSign(R.quay.push, img.repository, img.digest, key);
    const report = await verifier.verify({ image: img.ref, policy: policy("sp_keys", release, key), signal: signal() });
    expect(report.accepted).toEqual({ policyId: "sp_keys", format: "cosign", keyId: key.keyId });
  });
});

describe("registries as a pull reaches them", () => {
  it("a private registry behind a Bearer challenge: the signature is read with the service's credential", async () => {
    const img = await pushed(R.ghcr);
    await cosignSign(R.ghcr.push, img.repository, img.digest, release);
    const report = await verifier.verify({ image: img.ref, auth: ghcrAuth, policy: policy("sp_release", release), signal: signal() });
    expect(report.accepted?.keyId).toBe(release.keyId);
    // Without it the registry refuses, and the failure is classified like a pull's.
    const anonymous = await verifier.verify({ image: img.ref, policy: policy("sp_release", release), signal: signal() }).catch((e: unknown) => e);
    expect(anonymous).toBeInstanceOf(AgentError);
    expect((anonymous as AgentError).code).toBe("image_not_found");
  });

  it("a wrong credential is registry_auth_failed", async () => {
    const img = await pushed(R.ghcr);
    const err = await verifier
      .verify({ image: img.ref, auth: { ...ghcrAuth, password: "ghp_wrongwrongwrongwrong" }, policy: policy("sp_release", release), signal: signal() })
      .catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("registry_auth_failed");
  });

  it("ECR's Basic auth (user AWS), and the token never shows in what the verifier reports", async () => {
    const img = await pushed(R.ecr, "worker");
    await cosignSign(R.ecr.push, img.repository, img.digest, release);
    const report = await verifier.verify({ image: img.ref, auth: ecrAuth, policy: policy("sp_release", release), signal: signal() });
    expect(report.accepted?.keyId).toBe(release.keyId);
    expect(scrubber.scrub(`x ${R.ecr.password!} y`)).not.toContain(R.ecr.password!);
  });

  it("Docker Hub over verified TLS, trusting the CA dockerd's certs.d gives for registry-1.docker.io", async () => {
    const img = await pushed(R.dockerhub, "public");
    await cosignSign(R.dockerhub.push, img.repository, img.digest, release);
    const report = await verifier.verify({ image: `docker.io/${img.repository}:1`, policy: policy("sp_release", release), signal: signal() });
    expect(report.digest).toBe(img.digest);
    expect(report.accepted?.keyId).toBe(release.keyId);
  });

  it("Docker Hub's certificate is checked: without the CA in certs.d the registry is unreachable", async () => {
    const img = await pushed(R.dockerhub, "public");
    const noCa = createSignatureVerifier(
      nodeRegistryDeps({ routes: new ProxyRoutes({}), registryConfig: (s) => docker.registryConfig(s), scrubber, certsDir: path.join(dir, "empty"), lookup: stackLookup() }),
    );
    const err = await noCa.verify({ image: `docker.io/${img.repository}:1`, policy: policy("sp_release", release), signal: signal() }).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("registry_unreachable");
    expect((err as AgentError).message).toMatch(/^GET https:\/\/registry-1\.docker\.io\/v2\/public\/sig-[0-9a-f]+\/manifests\/1: .*certificate/);
  });

  it("through the agent's proxy: Docker Hub over CONNECT, its certificate still checked against certs.d", async () => {
    const img = await pushed(R.dockerhub, "public");
    await cosignSign(R.dockerhub.push, img.repository, img.digest, release);
    const proxy = await startForwardProxy({ hosts: { "registry-1.docker.io": R.dockerhub.address }, user: "sbx-proxy-user", password: `pw-${uid()}` });
    try {
      const proxied = createSignatureVerifier(
        nodeRegistryDeps({ routes: new ProxyRoutes({ HTTPS_PROXY: proxy.url }), registryConfig: (s) => docker.registryConfig(s), scrubber, certsDir, lookup: stackLookup() }),
      );
      const report = await proxied.verify({ image: `docker.io/${img.repository}:1`, policy: policy("sp_release", release), signal: signal() });
      expect(report.accepted?.keyId).toBe(release.keyId);
      expect(proxy.requests()).toContain("CONNECT registry-1.docker.io:443 HTTP/1.1");
    } finally {
      await proxy.stop();
    }
  });

  it("an unknown tag is image_not_found", async () => {
    const img = await pushed();
    const err = await verifier.verify({ image: `quay.io/${img.repository}:nope`, policy: policy("sp_release", release), signal: signal() }).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("image_not_found");
  });
});

describe("Sigstore bundles (cosign 3's form, through the referrers fallback tag)", () => {
  let signedBy: Awaited<ReturnType<typeof pushed>>;
  beforeAll(async () => {
    signedBy = await pushed();
  });

  it("accepts a bundle signed with the policy's key over the image's digest", async () => {
    await attachBundle(R.quay.push, signedBy.repository, signedBy.digest, await makeBundle(release, cosignStatement(signedBy.digest)));
    const report = await verifier.verify({ image: signedBy.ref, policy: policy("sp_release", release), signal: signal() });
    expect(report.digest).toBe(signedBy.digest);
    expect(report.accepted).toEqual({ policyId: "sp_release", format: "sigstore-bundle", keyId: release.keyId });
  });

  it("rejects a bundle by another key, and one whose statement names another digest", async () => {
    const img = await pushed();
    await attachBundle(R.quay.push, img.repository, img.digest, await makeBundle(other, cosignStatement(img.digest)));
    await attachBundle(R.quay.push, img.repository, img.digest, await makeBundle(release, cosignStatement(signedBy.digest)));
    const report = await verifier.verify({ image: img.ref, policy: policy("sp_release", release), signal: signal() });
    expect(report.accepted).toBeUndefined();
    expect(rejections(report)).toHaveLength(2);
    expect(rejections(report)).toEqual(expect.arrayContaining([`payload names ${signedBy.digest}`, expect.stringContaining("signed by a key not in sp_release")]));
    expect(report.candidates.every((c) => c.format === "sigstore-bundle")).toBe(true);
  });

  it("accepts a bundle on a private Bearer registry, with an Ed25519 key", async () => {
    const img = await pushed(R.ghcr);
    await attachBundle(R.ghcr.push, img.repository, img.digest, await makeBundle(ed, cosignStatement(img.digest)));
    const report = await verifier.verify({ image: img.ref, auth: ghcrAuth, policy: policy("sp_release", release, ed), signal: signal() });
    expect(report.accepted).toEqual({ policyId: "sp_release", format: "sigstore-bundle", keyId: ed.keyId });
  });
});
