// docs/reference.md §2a in the bake, with a plain fake of the signature verifier:
// what verified is pulled by its digest and tagged; what did not is never pulled,
// and the failure says what was found and why each signature was refused.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CredentialResolver } from "../credentials/resolve.ts";
import { AgentError } from "../errors/agent-error.ts";
import { Scrubber } from "../errors/scrub.ts";
import { parsePolicyKey } from "../spec/public-keys.ts";
import type { PolicyKey, SignaturePolicy, SignatureVerifier, VerificationReport, VerifyRequest } from "../signatures/types.ts";
import { validateSpec, type BakeSpec } from "../spec/schema.ts";
import { Verifications } from "../state/verifications.ts";
import { fakeClock } from "../../test/unit/fakes.ts";
import { bakeFixture, PREFIX } from "../../test/unit/bake-fixture.ts";
import { runBake } from "./run.ts";

const A = "sha256:" + "a".repeat(64);
const B = "sha256:" + "b".repeat(64);
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function policyKey(): PolicyKey {
  const pem = String(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }));
  const r = parsePolicyKey(pem);
  if (!r.ok) throw new Error(r.reason);
  return r.key;
}
const KEY = policyKey();
const OTHER = policyKey();
const RELEASE: SignaturePolicy = { id: "sp_release", label: "release key", keys: [KEY] };

/** A spec whose services named `policy` get it, as the validator resolves signaturePolicyId. */
function spec(services: (Record<string, unknown> & { policy?: SignaturePolicy })[], bakeId = "bk_sig"): BakeSpec {
  const r = validateSpec(
    {
      bakeId,
      orgId: "org",
      registryCredentials: [{ id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" }],
      services: services.map(({ policy: _, ...s }) => s),
    },
    { ssmParameterPrefix: PREFIX },
  );
  if (!r.ok) throw new Error(JSON.stringify(r.violations));
  r.spec.services.forEach((s, i) => {
    const p = services[i]!.policy;
    if (p) s.signaturePolicy = p;
  });
  return r.spec;
}

/** The verifier as the bake sees it: answers per image from `answer`, records what it was asked. */
class FakeVerifier implements SignatureVerifier {
  readonly asked: VerifyRequest[] = [];
  answer: (req: VerifyRequest) => Promise<VerificationReport> = async (req) => signed(req.image, A);
  verify(req: VerifyRequest): Promise<VerificationReport> {
    this.asked.push(req);
    return this.answer(req);
  }
}

const signed = (image: string, digest: string, keyId = KEY.keyId): VerificationReport => ({
  image,
  digest,
  candidates: [{ format: "sigstore-bundle", source: "sha256:" + "e".repeat(64) }],
  accepted: { policyId: "sp_release", format: "sigstore-bundle", keyId },
});

function setup() {
  const f = bakeFixture(dirs);
  const verifier = new FakeVerifier();
  const signatures = { verifier, verifications: new Verifications(f.stateDir), clock: f.clock, random: () => 0.5 };
  const run = (s: BakeSpec, config: { pullRetries?: number } = {}) => runBake(s, f.deps(config, { signatures }), new AbortController().signal);
  const manifestFile = path.join(f.stateDir, "manifest.json");
  return { docker: f.docker, aws: f.aws, verifier, events: f.events, steps: f.steps, run, stateDir: f.stateDir, manifestFile, manifest: () => JSON.parse(readFileSync(manifestFile, "utf8")) };
}

describe("a bake of a service with a signature policy", () => {
  it("verifies the spec's reference with the service's credential, pulls the digest that verified, tags it, and records the signature everywhere", async () => {
    const t = setup();
    const r = await t.run(spec([{ name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", policy: RELEASE }]));
    expect(r.status, JSON.stringify(r.services)).toBe("succeeded");
    expect(t.verifier.asked.map((q) => [q.image, q.policy.id, q.auth?.username])).toEqual([["ghcr.io/acme/billing:3.1", "sp_release", "acme-bot"]]);
    // Never the tag again: the digest, then the spec's tag on it.
    expect(t.docker.pulls()).toEqual([`ghcr.io/acme/billing:${A} as acme-bot`]);
    expect(t.docker.log).toContain(`tag ghcr.io/acme/billing@${A} ghcr.io/acme/billing:3.1`);
    const signature = { policyId: "sp_release", format: "sigstore-bundle", keyId: KEY.keyId };
    expect(r.services[0]).toMatchObject({ status: "pulled", digest: A, signature });
    expect(t.events.find((e) => e.type === "service.pulled")).toMatchObject({ service: "billing", digest: A, signature });
    expect(t.manifest().services[0]).toMatchObject({ name: "billing", digest: A, signature });
    expect(t.steps.find((s) => s.kind === "verify")).toMatchObject({ outcome: "verified", digest: A, signature });
  });

  it("refuses an unsigned image: image_signature_invalid naming the image, the digest and what was found; nothing pulled; the previous manifest untouched", async () => {
    const t = setup();
    writeFileSync(t.manifestFile, '{"previous":true}\n');
    t.verifier.answer = async (req) => ({ image: req.image, digest: A, candidates: [] });
    const r = await t.run(spec([{ name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", policy: RELEASE }]));
    expect(r.status).toBe("failed");
    const error = r.services[0]!.error!;
    expect(error.code).toBe("image_signature_invalid");
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      `image ghcr.io/acme/billing:3.1 (${A}): no signature of this digest verifies with a key of sp_release; found 0 cosign signatures and 0 sigstore bundles: no signatures found`,
    );
    expect(t.docker.pulls()).toEqual([]);
    expect(readFileSync(t.manifestFile, "utf8")).toBe('{"previous":true}\n');
    expect(t.events.find((e) => e.type === "service.failed")).toMatchObject({ error: { code: "image_signature_invalid" } });
    expect(t.steps.find((s) => s.kind === "verify")).toMatchObject({ outcome: "rejected", digest: A });
  });

  it("says why each signature found was rejected, by form", async () => {
    const t = setup();
    t.verifier.answer = async (req) => ({
      image: req.image,
      digest: A,
      candidates: [
        { format: "cosign", source: "sha256:" + "1".repeat(64), rejected: "signed by a key not in sp_release" },
        { format: "cosign", source: "sha256:" + "2".repeat(64), rejected: `payload names ${B}` },
        { format: "sigstore-bundle", source: "sha256:" + "3".repeat(64), rejected: "signature does not verify (tampered payload)" },
      ],
    });
    const r = await t.run(spec([{ name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", policy: RELEASE }]));
    expect(r.services[0]!.error!.message).toBe(
      `image ghcr.io/acme/billing:3.1 (${A}): no signature of this digest verifies with a key of sp_release; found 2 cosign signatures and 1 sigstore bundle: ` +
        `cosign signature sha256:111111111111: signed by a key not in sp_release; cosign signature sha256:222222222222: payload names ${B}; ` +
        "sigstore bundle sha256:333333333333: signature does not verify (tampered payload)",
    );
    expect(t.docker.pulls()).toEqual([]);
  });

  it("does not take an acceptance by a key outside the policy", async () => {
    const t = setup();
    t.verifier.answer = async (req) => signed(req.image, A, OTHER.keyId);
    const r = await t.run(spec([{ name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", policy: RELEASE }]));
    expect(r.services[0]!.error!.code).toBe("image_signature_invalid");
    expect(t.docker.pulls()).toEqual([]);
  });

  it("fails with the registry's classified error when the signatures cannot be looked up, and pulls nothing", async () => {
    const t = setup();
    t.verifier.answer = async () => {
      throw new AgentError("registry_unreachable", "GET https://ghcr.io/v2/acme/billing/manifests/3.1: connect ECONNREFUSED");
    };
    const r = await t.run(spec([{ name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", policy: RELEASE }]));
    expect(r.services[0]!.error).toMatchObject({ code: "registry_unreachable" });
    expect(t.docker.pulls()).toEqual([]);
    expect(t.steps.find((s) => s.kind === "verify")).toMatchObject({ outcome: "failed" });
  });

  it("retries a retryable registry failure like a pull's, and says how many attempts a failure that stays made", async () => {
    const t = setup();
    let calls = 0;
    t.verifier.answer = async (req) => {
      calls += 1;
      if (calls === 1) throw new AgentError("registry_unreachable", "GET https://ghcr.io/v2/: 503 Service Unavailable");
      return signed(req.image, A);
    };
    const r = await t.run(spec([{ name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", policy: RELEASE }]), { pullRetries: 1 });
    expect(r.services[0]).toMatchObject({ status: "pulled", digest: A });
    expect(t.steps.filter((s) => s.kind === "retry")).toEqual([expect.objectContaining({ image: "ghcr.io/acme/billing:3.1", attempt: 1, retriesLeft: 1, error: expect.objectContaining({ code: "registry_unreachable" }) })]);
    t.verifier.answer = async () => {
      throw new AgentError("registry_auth_failed", "GET https://ghcr.io/token: 401 Unauthorized");
    };
    const refused = await t.run(spec([{ name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", policy: RELEASE }], "bk_two"), { pullRetries: 1 });
    expect(refused.services[0]!.error).toMatchObject({ code: "registry_auth_failed", attempts: 1 });
  });

  it("refuses the tag once it has moved to an unsigned image, though the bake before pulled it signed", async () => {
    const t = setup();
    const billing = { name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", policy: RELEASE };
    expect((await t.run(spec([billing], "bk_one"))).status).toBe("succeeded");
    const before = readFileSync(t.manifestFile, "utf8");
    t.verifier.answer = async (req) => ({ image: req.image, digest: B, candidates: [] });
    const r = await t.run(spec([billing], "bk_two"));
    expect(r.services[0]!.error!.code).toBe("image_signature_invalid");
    expect(r.services[0]!.error!.message).toContain(B);
    expect(t.docker.pulls()).toEqual([`ghcr.io/acme/billing:${A} as acme-bot`]);
    expect(readFileSync(t.manifestFile, "utf8")).toBe(before);
  });

  it("verifies a pinned digest too, even one Docker has; the next bake reuses that verification from the state dir and stays warm", async () => {
    const t = setup();
    t.docker.has("ghcr.io/acme/billing", A);
    const pinned = { name: "billing", image: `ghcr.io/acme/billing@${A}`, registryCredentialId: "rc_gh", policy: RELEASE };
    const first = await t.run(spec([pinned], "bk_one"));
    expect(first.services[0]).toMatchObject({ status: "present", signature: { keyId: KEY.keyId } });
    expect(t.verifier.asked.map((q) => q.image)).toEqual([`ghcr.io/acme/billing@${A}`]);
    const second = await t.run(spec([pinned], "bk_two"));
    expect(second.services[0]).toMatchObject({ status: "present", digest: A, signature: { policyId: "sp_release", format: "sigstore-bundle", keyId: KEY.keyId } });
    expect(t.verifier.asked).toHaveLength(1);
    expect(t.aws.calls).toEqual([`ssm ${PREFIX}rc_gh`]);
    expect(t.steps.filter((s) => s.kind === "verify").map((s) => (s.kind === "verify" ? s.outcome : ""))).toEqual(["verified", "reused"]);
    expect(t.docker.pulls()).toEqual([]);
  });

  it("does not reuse a verification made with another set of keys", async () => {
    const t = setup();
    t.docker.has("ghcr.io/acme/billing", A);
    const pinned = { name: "billing", image: `ghcr.io/acme/billing@${A}`, registryCredentialId: "rc_gh" };
    await t.run(spec([{ ...pinned, policy: RELEASE }], "bk_one"));
    t.verifier.answer = async (req) => ({ image: req.image, digest: A, candidates: [{ format: "cosign", source: B, rejected: "signed by a key not in sp_release" }] });
    const r = await t.run(spec([{ ...pinned, policy: { id: "sp_release", keys: [KEY, OTHER] } }], "bk_two"));
    expect(t.verifier.asked).toHaveLength(2);
    expect(r.services[0]!.error!.code).toBe("image_signature_invalid");
  });

  it("refuses a report about another digest than the pinned one", async () => {
    const t = setup();
    t.verifier.answer = async (req) => signed(req.image, B);
    const r = await t.run(spec([{ name: "billing", image: `ghcr.io/acme/billing@${A}`, registryCredentialId: "rc_gh", policy: RELEASE }]));
    expect(r.services[0]!.error!.code).toBe("image_signature_invalid");
    expect(t.docker.pulls()).toEqual([]);
  });

  it("pulls an image shared with a service without a policy once, by the verified digest; only the service with the policy records a signature", async () => {
    const t = setup();
    const r = await t.run(
      spec([
        { name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", policy: RELEASE },
        { name: "billing-copy", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh" },
      ]),
    );
    expect(t.docker.pulls()).toEqual([`ghcr.io/acme/billing:${A} as acme-bot`]);
    expect(r.services[0]!.signature).toBeDefined();
    expect(r.services[1]).toMatchObject({ status: "pulled", digest: A });
    expect(r.services[1]!.signature).toBeUndefined();
  });

  it("fails a policy's service when the bake was given no verifier: there is no way to skip the check", async () => {
    const t = setup();
    const s = spec([{ name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", policy: RELEASE }]);
    const r = await runBake(
      s,
      { config: { stateDir: t.stateDir, pullConcurrency: 1, pullRetries: 0, pullTimeoutSeconds: 60, pullInactivityTimeoutSeconds: 30 }, docker: t.docker, resolver: new CredentialResolver({ aws: () => t.aws, scrubber: new Scrubber(), clock: fakeClock(), random: () => 0.5, ssmParameterPrefix: PREFIX }), clock: fakeClock(), random: () => 0.5, scrubber: new Scrubber(), emit: async () => undefined },
      new AbortController().signal,
    );
    expect(r.services[0]!.error!.code).toBe("internal");
    expect(t.docker.pulls()).toEqual([]);
  });
});
