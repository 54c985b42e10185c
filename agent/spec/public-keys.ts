// docs/reference.md §2: a signature policy's public keys, parsed when the spec is
// validated, and the shape of a policy the spec, the verifier and the bake share
// (signatures/types.ts names them for the verifier's contract; they live here,
// below all three). Only a PEM `PUBLIC KEY` (SPKI) of the kinds cosign signs with is
// accepted: ECDSA P-256/P-384/P-521, RSA of 2048 bits or more, Ed25519. A
// private key pasted by mistake is refused in words that never quote it: the
// reason goes into violations, the `--json` result and the daemon's 422, so no
// byte of the input is ever part of it.
import { createHash, createPublicKey, type KeyObject } from "node:crypto";

/** One of a policy's public keys, parsed and checked when the spec is validated. */
export interface PolicyKey {
  /** SHA-256 of the key's SPKI (DER), lower-case hex: how reports name the key. */
  readonly keyId: string;
  readonly key: KeyObject;
}

export interface SignaturePolicy {
  readonly id: string;
  readonly label?: string;
  readonly keys: readonly PolicyKey[];
}

export type KeyParse = { ok: true; key: PolicyKey } | { ok: false; reason: string };

/** An RSA-4096 SPKI PEM is ~800 characters: anything far past that is not one key. */
export const MAX_PEM_LENGTH = 16 * 1024;
const MIN_RSA_BITS = 2048;
const CURVES: Readonly<Record<string, string>> = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };

const BEGIN = /-----BEGIN ([^-\r\n]*)-----/g;
const BLOCK = /^-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\s]+?)\r?\n?-----END PUBLIC KEY-----$/;

const PRIVATE =
  "is a private key, not a public key: give the public half (cosign.pub, or `cosign public-key --key cosign.key`), and treat this private key as exposed (rotate it)";

/** Which kind of key, in words, or why it is not one the policy accepts. */
function kindProblem(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === "ed25519") return undefined;
  if (type === "ec") {
    const curve = details.namedCurve ?? "unknown";
    return CURVES[curve] ? undefined : `is an ECDSA key on curve ${curve}; only P-256, P-384 and P-521 are accepted`;
  }
  if (type === "rsa") {
    const bits = details.modulusLength ?? 0;
    return bits >= MIN_RSA_BITS ? undefined : `is an RSA key of ${bits} bits; at least ${MIN_RSA_BITS} are needed`;
  }
  return `is a ${type ?? "unknown"} key; only ECDSA (P-256, P-384, P-521), RSA (2048 bits or more) and Ed25519 keys are accepted`;
}

/** Parses one PEM public key; the reason (when refused) is a phrase that follows "the key". */
export function parsePolicyKey(pem: string): KeyParse {
  if (pem.length > MAX_PEM_LENGTH) return { ok: false, reason: `is longer than ${MAX_PEM_LENGTH} characters; one PEM public key is far shorter` };
  const labels = [...pem.matchAll(BEGIN)].map((m) => m[1]!.trim());
  // A private key is named as one whatever else is wrong: it must never be taken for a public key nor shown.
  if (labels.some((l) => l.includes("PRIVATE KEY"))) return { ok: false, reason: PRIVATE };
  if (labels.length === 0) return { ok: false, reason: "is not a PEM block: expected -----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----" };
  if (labels.length > 1) return { ok: false, reason: `holds ${labels.length} PEM blocks; give each key as its own entry of publicKeys` };
  const label = labels[0]!;
  if (label === "CERTIFICATE") return { ok: false, reason: "is a certificate, not a public key: certificate (keyless) verification is not supported; give the signing key's PEM PUBLIC KEY" };
  if (label !== "PUBLIC KEY") {
    // The label is not quoted unless it is the one known mistake: it is the spec's free text.
    if (label === "RSA PUBLIC KEY") {
      return { ok: false, reason: 'is an "RSA PUBLIC KEY" (PKCS#1) block; only "PUBLIC KEY" (SPKI) is accepted (openssl rsa -RSAPublicKey_in -in key.pem -pubout converts it)' };
    }
    return { ok: false, reason: 'is a PEM block of another kind; only a "PUBLIC KEY" (SPKI) block is accepted' };
  }
  const body = BLOCK.exec(pem.trim());
  if (!body) return { ok: false, reason: "is not a well-formed PEM PUBLIC KEY block (text around it, or characters that are not base64)" };
  const der = Buffer.from(body[1]!.replace(/\s+/g, ""), "base64");
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: "der", type: "spki" });
  } catch {
    return { ok: false, reason: "does not parse as a PEM PUBLIC KEY (SPKI)" };
  }
  const problem = kindProblem(key);
  if (problem) return { ok: false, reason: problem };
  const spki = key.export({ type: "spki", format: "der" });
  return { ok: true, key: { keyId: createHash("sha256").update(spki).digest("hex"), key } };
}

/** What a key is, for a person: `ECDSA P-256`, `RSA 3072`, `Ed25519`. */
export function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") return `ECDSA ${CURVES[d.namedCurve ?? ""] ?? d.namedCurve}`;
  if (key.asymmetricKeyType === "rsa") return `RSA ${d.modulusLength}`;
  return "Ed25519";
}
