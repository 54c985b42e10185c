// docs/reference.md §2 and §2a: the rules of a spec's signature policies (their
// fields are schema.ts's policyShape). A policy's id is unique, and each of its
// public keys is parsed here (public-keys.ts), so that a key the verifier
// could never use is refused, at its own path, before anything is fetched. A
// private key pasted by mistake is refused in words that never quote it.
import { parsePolicyKey, type PolicyKey, type SignaturePolicy } from "./public-keys.ts";
import type { Fields, PolicyShape, Violation } from "./schema.ts";

export interface CheckedPolicies {
  /** The policies that passed every rule, by id: the first of each id. */
  readonly usable: ReadonlyMap<string, SignaturePolicy>;
  /** Every id the spec declares, usable or not: a service naming one is not told it does not exist. */
  readonly declared: ReadonlySet<string>;
  readonly violations: Violation[];
}

export function checkPolicies(list: readonly (Fields<PolicyShape> | undefined)[]): CheckedPolicies {
  const usable = new Map<string, SignaturePolicy>();
  const declared = new Set<string>();
  const violations: Violation[] = [];
  list.forEach((p, i) => {
    if (!p) return;
    const at = `signaturePolicies[${i}]`;
    const { id, type, label, publicKeys } = p.value;
    if (id !== undefined && declared.has(id)) violations.push({ path: `${at}.id`, code: "spec_invalid", message: `duplicate signature policy id "${id}"` });
    if (id !== undefined) declared.add(id);
    const keys = keysOf(publicKeys ?? [], at, violations);
    if (id === undefined || !p.valid("id") || type === undefined || !publicKeys || keys.length !== publicKeys.length || usable.has(id)) return;
    usable.set(id, { id, ...(label !== undefined ? { label } : {}), keys });
  });
  return { usable, declared, violations };
}

/** The keys that parse; each that does not is a violation at its path, with the reason (never the key). */
function keysOf(pems: readonly string[], at: string, violations: Violation[]): PolicyKey[] {
  const keys: PolicyKey[] = [];
  pems.forEach((pem, j) => {
    const parsed = parsePolicyKey(pem);
    if (parsed.ok) keys.push(parsed.key);
    else violations.push({ path: `${at}.publicKeys[${j}]`, code: "spec_invalid", message: `this key ${parsed.reason}` });
  });
  return keys;
}

/**
 * A service's `signaturePolicyId` resolved: the policy, or a violation at the
 * service's `signaturePolicyId` when the spec declares no policy of that id. A
 * policy declared but broken has its own violations already.
 */
export function servicePolicy(id: string | undefined, policies: CheckedPolicies, report: (key: string, message: string) => void): SignaturePolicy | undefined {
  if (id === undefined) return undefined;
  if (!policies.declared.has(id)) report("signaturePolicyId", `no signature policy with id "${id}" in signaturePolicies`);
  return policies.usable.get(id);
}
