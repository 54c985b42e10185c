// A Sigstore bundle (cosign 3's default signature), checked offline with
// @sigstore/verify against the trusted root that ships with the agent
// (trusted-root.json): Sigstore's public-good transparency logs and timestamp
// authority from https://github.com/sigstore/root-signing targets/trusted_root.json
// — the Rekor v1 key as read at commit cdc6d42ede8a8f8aac28506e4c2a8253da31866f;
// the Rekor v2 log log2025-1 (Ed25519, SPKI SHA-256 b54813cb…0690) and the
// sigstore-tsa chain as the later root publishes them (commit ba3066c4…), the same
// bytes in sigstore-js's and sigstore-java's test roots. No certificate authority
// or CT log: a cosign-key policy trusts keys, not Fulcio. cosign 3 signs with
// Rekor v2 and the TSA by default; a bundle of a log or TSA this root does not
// know is rejected, never accepted without its check.
// Every transparency-log entry a bundle carries is verified by @sigstore/verify
// whatever the threshold (verify/src/tlog/index.ts): an entry of a log the root
// does not know rejects the bundle. What cosign 3 signs for an image is a DSSE
// envelope over an in-toto Statement whose subject digest is the image's
// (cosign: IntotoSubjectClaimVerifier); that binding is checked here.
// https://github.com/sigstore/cosign/blob/main/specs/BUNDLE_SPEC.md
import { bundleFromJSON, type Bundle } from "@sigstore/bundle";
import { TrustedRoot } from "@sigstore/protobuf-specs";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import trustedRootJson from "./trusted-root.json" with { type: "json" };
import type { PolicyKey } from "./types.ts";

export const BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
// What cosign 3's `sign` states (cosign: pkg/types/predicate.go). `cosign attest` writes the
// same form with its own predicate: a claim about the image, not the signature asked for.
const COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1";

const TRUSTED_ROOT = TrustedRoot.fromJSON(trustedRootJson);

export type BundleOutcome = { key: PolicyKey } | { rejected: string; names?: string };

/** A verification error's words: "SIGNATURE_ERROR: signature verification failed". */
function errorWords(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; fields?: unknown } | null;
  const fields = Array.isArray(e?.fields) && e.fields.length ? ` (${e.fields.join(", ")})` : "";
  const message = (typeof e?.message === "string" ? e.message : String(err)) + fields;
  return typeof e?.code === "string" ? `${e.code}: ${message}` : message;
}

function subjectProblem(bundle: Bundle, digest: string): { rejected: string; names?: string } | undefined {
  if (bundle.content.$case !== "dsseEnvelope") return { rejected: "a message-signature bundle signs a blob, not an image (no in-toto statement)" };
  const env = bundle.content.dsseEnvelope;
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) return { rejected: `DSSE payload is of type ${env.payloadType}, not ${IN_TOTO_PAYLOAD_TYPE}` };
  let statement: { subject?: { digest?: Record<string, unknown> }[]; predicateType?: unknown };
  try {
    statement = JSON.parse(Buffer.from(env.payload).toString("utf8")) as typeof statement;
  } catch {
    return { rejected: "the in-toto statement is not JSON" };
  }
  if (typeof statement !== "object" || statement === null) return { rejected: "the in-toto statement is not a JSON object" };
  if (statement.predicateType !== COSIGN_SIGN_PREDICATE) {
    return { rejected: `an attestation (predicateType ${String(statement.predicateType)}), not a signature (${COSIGN_SIGN_PREDICATE})` };
  }
  const [algorithm, hex] = digest.split(":") as [string, string];
  const subjects = (statement.subject ?? []).map((s) => s.digest?.[algorithm]).filter((d): d is string => typeof d === "string");
  if (subjects.includes(hex)) return undefined;
  if (subjects.length === 0) return { rejected: `the in-toto statement names no ${algorithm} subject` };
  const names = `${algorithm}:${subjects[0]}`;
  return { rejected: `payload names ${subjects.map((s) => `${algorithm}:${s}`).join(", ")}`, names };
}

/** Checks one bundle document against the policy's keys and the image digest. */
export function verifyBundle(json: unknown, keys: readonly PolicyKey[], policyId: string, digest: string): BundleOutcome {
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    return { rejected: `not a valid Sigstore bundle: ${errorWords(err)}` };
  }
  if (bundle.verificationMaterial.content.$case !== "publicKey") {
    return { rejected: `signed with a certificate (keyless), not with a key of ${policyId}` };
  }
  const entity = toSignedEntity(bundle);
  let tlogFailure: string | undefined;
  for (const key of keys) {
    // One key at a time: the bundle's hint is the signer's choice of words, not a key id the policy knows.
    const trust = toTrustMaterial(TRUSTED_ROOT, () => ({ publicKey: key.key, validFor: () => true }));
    try {
      new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(entity);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === "string" && code.startsWith("TLOG")) tlogFailure ??= errorWords(err);
      continue;
    }
    return subjectProblem(bundle, digest) ?? { key };
  }
  if (tlogFailure) return { rejected: `its transparency-log entry does not verify (${tlogFailure})` };
  return { rejected: `signed by a key not in ${policyId}, or tampered: the signature does not verify with any of its keys` };
}
