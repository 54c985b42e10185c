// The contract between the spec (which parses a policy's keys), the verifier
// (which finds and checks signatures in a registry) and the bake (which pulls
// the digest the verifier accepted). See docs/reference.md §2a.
import type { RegistryAuth } from "../credentials/types.ts";
import type { SignaturePolicy } from "../spec/public-keys.ts";

// A policy and its keys are parsed by the spec: their shapes live below it (spec/public-keys.ts).
export type { PolicyKey, SignaturePolicy } from "../spec/public-keys.ts";

export type SignatureFormat = "cosign" | "sigstore-bundle";

/** What the manifest, `--json`, the API and `service.pulled` record per verified image. */
export interface VerifiedSignature {
  readonly policyId: string;
  readonly format: SignatureFormat;
  readonly keyId: string;
}

/** One signature the verifier looked at, and why it was rejected (absent when accepted). */
export interface SignatureCandidate {
  readonly format: SignatureFormat;
  /** The manifest or layer digest the signature was read from. */
  readonly source: string;
  readonly rejected?: string;
}

export interface VerificationReport {
  readonly image: string;
  /** The digest the reference resolved to (the index's, for a multi-platform image). */
  readonly digest: string;
  readonly candidates: readonly SignatureCandidate[];
  /** Present when one signature verified; the bake then pulls `name@digest`. */
  readonly accepted?: VerifiedSignature;
}

export interface VerifyRequest {
  /** The spec's reference as written (tag or digest). */
  readonly image: string;
  /** The service's credential as the pull would use it, or undefined for anonymous. */
  readonly auth?: RegistryAuth;
  readonly policy: SignaturePolicy;
  readonly signal: AbortSignal;
}

/**
 * Resolves the reference, finds both forms of signature for that digest and
 * checks them. Resolves with a report whether or not one verified (the
 * `verify` command prints it); registry failures reject with the classified
 * AgentError a pull would give (§5).
 */
export interface SignatureVerifier {
  verify(req: VerifyRequest): Promise<VerificationReport>;
}
