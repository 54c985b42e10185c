// verifyBundle on bundles sigstore-js's own DSSEBundleBuilder makes (test/stack/signing.ts),
// signed by the policy's key: what the statement says decides, not only who signed it.
import { describe, expect, it } from "vitest";
import { cosignStatement, makeBundle, makeKey } from "../../test/stack/signing.ts";
import { verifyBundle } from "./bundle.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("verifyBundle", () => {
  const key = makeKey("p256");
  const policyKey = { keyId: key.keyId, key: key.publicKey };

  it("accepts cosign 3's signature statement over the digest by a policy key", async () => {
    const bundle = JSON.parse((await makeBundle(key, cosignStatement(DIGEST))).toString("utf8")) as unknown;
    expect(verifyBundle(bundle, [policyKey], "sp_release", DIGEST)).toEqual({ key: policyKey });
  });

  // cosign attest writes the same DSSE in-toto form with the attestation's own predicateType
  // (SLSA provenance, SBOMs): an attestation by the release key is a claim about the image,
  // not the signature the policy asks for (cosign: pkg/types/predicate.go CosignSignPredicateType).
  it("rejects an attestation by a policy key over the digest: another predicateType is no signature", async () => {
    const statement = JSON.parse(cosignStatement(DIGEST).toString("utf8")) as Record<string, unknown>;
    statement.predicateType = "https://slsa.dev/provenance/v1";
    const bundle = JSON.parse((await makeBundle(key, Buffer.from(JSON.stringify(statement)))).toString("utf8")) as unknown;
    expect(verifyBundle(bundle, [policyKey], "sp_release", DIGEST)).toEqual({
      rejected: "an attestation (predicateType https://slsa.dev/provenance/v1), not a signature (https://sigstore.dev/cosign/sign/v1)",
    });
  });
});
