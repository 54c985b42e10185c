// cosign's classic signature: one layer of the `sha256-<hex>.sig` manifest, its
// blob a simple-signing payload, its signature (base64) in the layer annotation
// `dev.cosignproject.cosign/signature`, over the payload's bytes.
// https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
// The payload (sigstore/pkg/signature/payload/payload.go):
//   {"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":"sha256:…"},
//    "type":"cosign container image signature"},"optional":…}
// Hashes: cosign signs and verifies with SHA-256 whatever the key
// (`--signature-digest-algorithm`, default sha256); cosign 3's
// `--signing-algorithm ecdsa-sha2-384-nistp384` / `…-512-nistp521` hash with
// SHA-384 / SHA-512, so those curves are also tried with their own hash. RSA is
// PKCS#1 v1.5; Ed25519 signs the payload itself (no pre-hash).
import { verify as cryptoVerify } from "node:crypto";
import type { PolicyKey } from "./types.ts";

export const SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
export const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
export const CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate";
export const COSIGN_SIGNATURE_TYPE = "cosign container image signature";

/** The hashes a key's signature may have been made with, cosign's default first. */
function hashesFor(key: PolicyKey): (string | null)[] {
  const type = key.key.asymmetricKeyType;
  if (type === "ed25519") return [null];
  if (type === "ec") {
    const curve = key.key.asymmetricKeyDetails?.namedCurve;
    if (curve === "secp384r1") return ["sha256", "sha384"];
    if (curve === "secp521r1") return ["sha256", "sha512"];
  }
  return ["sha256"];
}

/** The policy key that made `signature` over `payload`, if one did. */
export function keyThatSigned(payload: Buffer, signature: Buffer, keys: readonly PolicyKey[]): PolicyKey | undefined {
  return keys.find((k) =>
    hashesFor(k).some((hash) => {
      try {
        return cryptoVerify(hash, payload, k.key, signature);
      } catch {
        // A signature that is no DER for this key type: not this key's.
        return false;
      }
    }),
  );
}

/** Why a verified payload does not name `digest` as a cosign image signature, or undefined when it does. */
export function payloadProblem(payload: Buffer, digest: string): { problem: string; names?: string } | undefined {
  let doc: { critical?: { type?: unknown; image?: { "docker-manifest-digest"?: unknown } } };
  try {
    doc = JSON.parse(payload.toString("utf8")) as typeof doc;
  } catch {
    return { problem: "payload is not JSON" };
  }
  const type = doc.critical?.type;
  if (type !== COSIGN_SIGNATURE_TYPE) return { problem: `payload is of type ${JSON.stringify(type ?? null)}, not "${COSIGN_SIGNATURE_TYPE}"` };
  const named = doc.critical?.image?.["docker-manifest-digest"];
  if (typeof named !== "string") return { problem: "payload names no digest (critical.image.docker-manifest-digest)" };
  if (named !== digest) return { problem: `payload names ${named}`, names: named };
  return undefined;
}
