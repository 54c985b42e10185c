// docs/reference.md §2a in the bake: before an image whose services name a
// signature policy is pulled, its reference is resolved to a digest and a
// signature of exactly that digest must verify with a key of each policy named;
// the bake then pulls `name@digest`, never the tag again. A verification made
// before for the same digest and keys (state/verifications.ts) is reused for a
// pinned image, which needs no registry request to know its digest.
import type { Clock, Random } from "../clock.ts";
import { REGISTRY_BACKOFF, withCountedBackoff } from "../docker/backoff.ts";
import type { RegistryAuth } from "../credentials/types.ts";
import { AgentError } from "../errors/agent-error.ts";
import type { SignatureFormat, SignaturePolicy, SignatureVerifier, VerificationReport, VerifiedSignature } from "../signatures/types.ts";
import type { ImageReference } from "../spec/reference.ts";
import type { Verifications } from "../state/verifications.ts";
import type { BakeStep } from "./types.ts";

export interface SignedDeps {
  verifier: SignatureVerifier;
  /** Retries of a retryable registry failure (a pull's pullRetries); none when absent. */
  retries?: number;
  /** The backoff's jitter (the Random port). */
  random: Random;
  /** Verifications already made; none: every image is verified afresh. */
  verifications?: Verifications;
  clock: Clock;
}

export interface VerifiedImage {
  /** The digest every policy's signature names: the one to pull. */
  digest: string;
  /** Per policy id: the signature that verified. */
  signatures: Map<string, VerifiedSignature>;
}

const FORM_NAMES: Record<SignatureFormat, [string, string]> = {
  cosign: ["cosign signature", "cosign signatures"],
  "sigstore-bundle": ["sigstore bundle", "sigstore bundles"],
};

const count = (n: number, f: SignatureFormat) => `${n} ${FORM_NAMES[f][n === 1 ? 0 : 1]}`;

/** A short form of a digest for a person: the algorithm and 12 hex digits. */
const short = (d: string) => (d.includes(":") ? d.slice(0, d.indexOf(":") + 13) : d.slice(0, 12));

/**
 * docs/reference.md §2a's failure: the image, the digest, how many signatures of each form
 * were found, and why each was rejected.
 */
export function signatureFailure(report: VerificationReport, policy: SignaturePolicy): AgentError {
  const of = (f: SignatureFormat) => report.candidates.filter((c) => c.format === f).length;
  const found = `found ${count(of("cosign"), "cosign")} and ${count(of("sigstore-bundle"), "sigstore-bundle")}`;
  const reasons = report.candidates.length === 0 ? ["no signatures found"] : report.candidates.map((c) => `${FORM_NAMES[c.format][0]} ${short(c.source)}: ${c.rejected ?? "rejected"}`);
  return new AgentError(
    "image_signature_invalid",
    `image ${report.image} (${report.digest}): no signature of this digest verifies with a key of ${policy.id}; ${found}: ${reasons.join("; ")}`,
  );
}

/** What a person reads of a report: one line per signature looked at, then the outcome. */
export function reportLines(report: VerificationReport, policy: SignaturePolicy): string[] {
  const lines = [`image:     ${report.image}`, `digest:    ${report.digest}`, `policy:    ${policy.id}${policy.label ? ` (${policy.label})` : ""}, ${policy.keys.length} key(s)`];
  for (const k of policy.keys) lines.push(`  key ${k.keyId}`);
  const of = (f: SignatureFormat) => report.candidates.filter((c) => c.format === f).length;
  lines.push(`found:     ${count(of("cosign"), "cosign")}, ${count(of("sigstore-bundle"), "sigstore-bundle")}`);
  for (const c of report.candidates) lines.push(`  ${FORM_NAMES[c.format][0]} ${c.source}: ${c.rejected === undefined ? "verified" : `rejected: ${c.rejected}`}`);
  if (report.candidates.length === 0) lines.push("  no signatures found");
  if (report.accepted) lines.push(`verified:  ${FORM_NAMES[report.accepted.format][0]} by key ${report.accepted.keyId} of ${report.accepted.policyId}`);
  else lines.push(`NOT VERIFIED: no signature of ${report.digest} verifies with a key of ${policy.id}`);
  return lines;
}

/**
 * docs/reference.md §5: a retryable registry failure while looking for signatures is
 * retried like a pull's, with backoff; the error that ends it says how many attempts were made.
 */
async function withRetries<T>(fn: () => Promise<T>, deps: SignedDeps, signal: AbortSignal, onRetry: (e: AgentError, attempt: number, retriesLeft: number) => void): Promise<T> {
  const backoff = { clock: deps.clock, random: deps.random, retries: deps.retries ?? 0, ...REGISTRY_BACKOFF };
  return withCountedBackoff(fn, backoff, signal, onRetry);
}

/** Distinct policies of the services that share an image, in the spec's order. */
export function policiesOf(services: readonly { signaturePolicy?: SignaturePolicy }[]): SignaturePolicy[] {
  const byId = new Map<string, SignaturePolicy>();
  for (const s of services) if (s.signaturePolicy && !byId.has(s.signaturePolicy.id)) byId.set(s.signaturePolicy.id, s.signaturePolicy);
  return [...byId.values()];
}

/**
 * Verifies `ref` (the spec's `written` reference) against every policy; throws image_signature_invalid (or the
 * registry's classified failure) for the first one that does not accept it. After
 * the first policy, the others are asked about the digest it resolved, so all
 * speak of one image even if the tag moves meanwhile.
 */
export async function verifyImage(
  written: string,
  ref: ImageReference,
  policies: readonly SignaturePolicy[],
  auth: RegistryAuth | undefined,
  deps: SignedDeps,
  signal: AbortSignal,
  step: (s: BakeStep) => void,
): Promise<VerifiedImage> {
  const signatures = new Map<string, VerifiedSignature>();
  let digest = ref.digest;
  for (const policy of policies) {
    const image = digest && digest !== ref.digest ? `${ref.name}@${digest}` : written;
    const keyIds = policy.keys.map((k) => k.keyId);
    const known = digest ? await deps.verifications?.find(digest, keyIds) : undefined;
    if (digest && known) {
      const signature = { policyId: policy.id, ...known };
      signatures.set(policy.id, signature);
      step({ kind: "verify", image: ref.canonical, policyId: policy.id, digest, outcome: "reused", signature });
      continue;
    }
    step({ kind: "verify-start", image: ref.canonical, policyId: policy.id });
    let report: VerificationReport;
    try {
      report = await withRetries(() => deps.verifier.verify({ image, ...(auth ? { auth } : {}), policy, signal }), deps, signal, (error, attempt, retriesLeft) =>
        step({ kind: "retry", image: ref.canonical, error: error.toBody(), attempt, retriesLeft }),
      );
    } catch (err) {
      if (!signal.aborted) step({ kind: "verify", image: ref.canonical, policyId: policy.id, outcome: "failed" });
      throw err;
    }
    // A pinned reference, or the digest the first policy resolved: a report about another digest is no answer.
    if (digest && report.digest !== digest) {
      step({ kind: "verify", image: ref.canonical, policyId: policy.id, digest: report.digest, outcome: "rejected" });
      throw new AgentError("image_signature_invalid", `image ${report.image}: asked about ${digest}, the registry's signatures were looked up for ${report.digest}`);
    }
    if (!report.accepted || report.accepted.policyId !== policy.id || !keyIds.includes(report.accepted.keyId)) {
      step({ kind: "verify", image: ref.canonical, policyId: policy.id, digest: report.digest, outcome: "rejected" });
      throw signatureFailure(report, policy);
    }
    digest = report.digest;
    signatures.set(policy.id, report.accepted);
    step({ kind: "verify", image: ref.canonical, policyId: policy.id, digest, outcome: "verified", signature: report.accepted });
    // A state dir that cannot be written costs only the next bake a verification.
    await deps.verifications?.record(digest, keyIds, { format: report.accepted.format, keyId: report.accepted.keyId }, deps.clock.now()).catch(() => undefined);
  }
  return { digest: digest!, signatures };
}
