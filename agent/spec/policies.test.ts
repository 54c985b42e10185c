// docs/reference.md §2: signaturePolicies and signaturePolicyId, through the validator.
import { createHash, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { validateSpec } from "./schema.ts";

const PREFIX = "/slothbox/registry-credentials/";
const pair = () => generateKeyPairSync("ec", { namedCurve: "P-256" });
const pub = (k = pair()) => String(k.publicKey.export({ type: "spki", format: "pem" }));
const P1 = pair();
const K1 = pub(P1);
const K2 = pub(generateKeyPairSync("ed25519"));
const policy = (extra: Record<string, unknown> = {}) => ({ id: "sp_release", type: "cosign-key", label: "release key", publicKeys: [K1, K2], ...extra });
const spec = (policies: unknown, services: unknown[]) => ({
  bakeId: "bk_1",
  orgId: "o",
  registryCredentials: [{ id: "rc_gh", type: "token", registry: "ghcr.io", username: "bot" }],
  services,
  ...(policies === undefined ? {} : { signaturePolicies: policies }),
});
const billing = (extra: Record<string, unknown> = {}) => ({ name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", signaturePolicyId: "sp_release", ...extra });
const check = (input: unknown) => validateSpec(input, { ssmParameterPrefix: PREFIX });
const violations = (input: unknown): [string, string, string][] => {
  const r = check(input);
  return r.ok ? [] : r.violations.map((v) => [v.path, v.code, v.message]);
};

describe("signature policies in the spec", () => {
  it("resolves each service's policy, catalog services too, with its keys parsed and named by their SPKI's SHA-256", () => {
    const r = check(spec([policy()], [billing(), { name: "cache", image: "redis:7", catalog: true, signaturePolicyId: "sp_release" }, { name: "plain", image: "quay.io/a/b:1" }]));
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    const [b, cache, plain] = r.spec.services;
    expect(b!.signaturePolicy?.id).toBe("sp_release");
    expect(b!.signaturePolicy?.label).toBe("release key");
    expect(b!.signaturePolicy?.keys.map((k) => k.keyId)).toEqual([
      createHash("sha256").update(P1.publicKey.export({ type: "spki", format: "der" })).digest("hex"),
      expect.stringMatching(/^[0-9a-f]{64}$/),
    ]);
    expect(cache!.signaturePolicy?.id).toBe("sp_release");
    expect(plain!.signaturePolicy).toBeUndefined();
  });

  it("takes a spec without policies as before", () => {
    expect(check(spec(undefined, [{ name: "plain", image: "quay.io/a/b:1" }])).ok).toBe(true);
    expect(check(spec([], [{ name: "plain", image: "quay.io/a/b:1" }])).ok).toBe(true);
  });

  it("refuses a service naming a policy the spec does not have, at its signaturePolicyId", () => {
    expect(violations(spec([policy()], [{ name: "a", image: "redis:7" }, { name: "b", image: "redis:6" }, billing({ signaturePolicyId: "sp_nope" })]))).toEqual([
      ["services[2].signaturePolicyId", "spec_invalid", 'no signature policy with id "sp_nope" in signaturePolicies'],
    ]);
  });

  it("refuses a private key at its path and never quotes it", () => {
    const priv = String(P1.privateKey.export({ type: "pkcs8", format: "pem" }));
    const r = check(spec([policy({ publicKeys: [K1, priv] })], [billing()]));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.violations.map((v) => [v.path, v.code])).toEqual([["signaturePolicies[0].publicKeys[1]", "spec_invalid"]]);
    expect(r.violations[0]!.message).toContain("a private key, not a public key");
    const body = priv.split("\n").filter((l) => l && !l.startsWith("-----"));
    expect(JSON.stringify(r)).not.toContain(body[1]!.slice(0, 20));
  });

  it("refuses keys of other kinds and PEM that does not parse, each at its own path, with its reason", () => {
    const rsa1024 = pub(generateKeyPairSync("rsa", { modulusLength: 1024 }));
    expect(violations(spec([policy({ publicKeys: [K1, rsa1024, "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"] })], [billing()]))).toEqual([
      ["signaturePolicies[0].publicKeys[1]", "spec_invalid", "this key is an RSA key of 1024 bits; at least 2048 are needed"],
      ["signaturePolicies[0].publicKeys[2]", "spec_invalid", "this key does not parse as a PEM PUBLIC KEY (SPKI)"],
    ]);
  });

  it("refuses a duplicate policy id, another type, no keys, too many keys, unknown keys, a non-string key", () => {
    expect(
      violations(
        spec(
          [
            policy(),
            policy(),
            policy({ id: "sp_keyless", type: "cosign-keyless" }),
            policy({ id: "sp_none", publicKeys: [] }),
            policy({ id: "sp_many", publicKeys: Array.from({ length: 17 }, () => K1) }),
            policy({ id: "sp_extra", rekor: true }),
            policy({ id: "sp_num", publicKeys: [K1, 7] }),
          ],
          [billing()],
        ),
      ),
    ).toEqual([
      ["signaturePolicies[2].type", "spec_invalid", 'type must be "cosign-key": cosign signatures checked with the policy\'s public keys (keyless and Notation are not supported)'],
      ["signaturePolicies[3].publicKeys", "spec_invalid", "a policy needs at least one public key"],
      ["signaturePolicies[4].publicKeys", "spec_invalid", "a policy holds at most 16 public keys"],
      ["signaturePolicies[5].rekor", "spec_invalid", 'unknown key "rekor"'],
      ["signaturePolicies[6].publicKeys[1]", "spec_invalid", "Invalid input: expected string, received number"],
      ["signaturePolicies[1].id", "spec_invalid", 'duplicate signature policy id "sp_release"'],
    ]);
  });

  it("does not also call a service's policy missing when the policy is there but broken", () => {
    expect(violations(spec([policy({ publicKeys: ["x"] })], [billing()]))).toEqual([
      ["signaturePolicies[0].publicKeys[0]", "spec_invalid", "this key is not a PEM block: expected -----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----"],
    ]);
  });

  it("refuses signaturePolicies that is not a list, and more than 64 policies", () => {
    expect(violations(spec({}, [billing()])).map((v) => v[0])).toContain("signaturePolicies");
    const many = Array.from({ length: 65 }, (_, i) => policy({ id: `sp_${i}` }));
    expect(violations(spec(many, [{ name: "a", image: "redis:7" }]))).toEqual([["signaturePolicies", "spec_invalid", "a spec holds at most 64 signature policies"]]);
  });
});
