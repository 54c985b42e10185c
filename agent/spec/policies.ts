// docs/reference.md §2 and §2a: a spec's signature policies and the services that name
// them. A policy has a unique id, type `cosign-key`, an optional label and 1–16
// PEM public keys, each parsed here (signatures/keys.ts) so that a key the
// verifier could never use is refused before anything is fetched. Any service,
// catalog ones too, may name a policy with `signaturePolicyId`.
import * as z from "zod";
import { parsePolicyKey } from "../signatures/keys.ts";
import type { PolicyKey, SignaturePolicy } from "../signatures/types.ts";

/** More policies than a box's services could name; a spec is untrusted input. */
export const MAX_POLICIES = 64;
/** Enough for a key rotation across teams; each key is tried on every signature found. */
export const MAX_KEYS = 16;

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export const policySchema = z.strictObject({
  id: z.string().regex(ID, "id must be 1-128 letters, digits, '_', '.' or '-'"),
  type: z.literal("cosign-key", { error: 'type must be "cosign-key": cosign signatures checked with the policy\'s public keys (keyless and Notation are not supported)' }),
  label: z.string().max(256).optional(),
  // Each key's own rules (PEM, kind, size) are checked below, at the key's path.
  publicKeys: z.array(z.string()).min(1, "a policy needs at least one public key").max(MAX_KEYS, `a policy holds at most ${MAX_KEYS} public keys`),
});

export const policiesSchema = z.array(policySchema).max(MAX_POLICIES, `a spec holds at most ${MAX_POLICIES} signature policies`);

export const signaturePolicyIdSchema = z.string().min(1);

export interface PolicyViolation {
  path: string;
  code: "spec_invalid";
  message: string;
}

/** Where violations go: the validator's list, whatever other codes it holds. */
type Sink = { push(v: PolicyViolation): unknown };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The policies that passed every rule, by id; each problem of those that did not
 * is pushed to `violations` at its path. `raw` is the spec's `signaturePolicies` as
 * given; past the bound only the schema's count violation is reported.
 */
export function parsePolicies(raw: unknown, violations: Sink): { policies: Map<string, SignaturePolicy>; ids: Set<string> } {
  const policies = new Map<string, SignaturePolicy>();
  const ids = new Set<string>();
  const list = Array.isArray(raw) && raw.length <= MAX_POLICIES ? raw : [];
  list.forEach((p: unknown, i: number) => {
    if (!isObject(p)) return;
    const at = (k: string) => `signaturePolicies[${i}].${k}`;
    const id = typeof p["id"] === "string" ? p["id"] : undefined;
    let ok = id !== undefined && ID.test(id) && p["type"] === "cosign-key";
    if (id !== undefined) {
      if (ids.has(id)) {
        violations.push({ path: at("id"), code: "spec_invalid", message: `duplicate signature policy id "${id}"` });
        ok = false;
      }
      ids.add(id);
    }
    const rawKeys = Array.isArray(p["publicKeys"]) && p["publicKeys"].length >= 1 && p["publicKeys"].length <= MAX_KEYS ? p["publicKeys"] : undefined;
    if (!rawKeys) ok = false;
    const keys: PolicyKey[] = [];
    rawKeys?.forEach((pem: unknown, j: number) => {
      if (typeof pem !== "string") return (ok = false);
      const parsed = parsePolicyKey(pem);
      // The reason never quotes the key: a private key pasted here must not travel on in a violation.
      if (!parsed.ok) {
        violations.push({ path: `${at("publicKeys")}[${j}]`, code: "spec_invalid", message: `this key ${parsed.reason}` });
        return (ok = false);
      }
      keys.push(parsed.key);
    });
    const label = typeof p["label"] === "string" ? p["label"] : undefined;
    if (ok && id !== undefined) policies.set(id, { id, ...(label !== undefined ? { label } : {}), keys });
  });
  return { policies, ids };
}

/**
 * A service's `signaturePolicyId` resolved: the policy, or a violation at
 * `services[i].signaturePolicyId` when no policy of the spec has that id. A
 * policy that exists but broke its own rules has its violations already.
 */
export function servicePolicy(
  s: Record<string, unknown>,
  i: number,
  parsed: { policies: Map<string, SignaturePolicy>; ids: Set<string> },
  violations: Sink,
): SignaturePolicy | undefined {
  const id = s["signaturePolicyId"];
  if (typeof id !== "string" || id === "") return undefined;
  const policy = parsed.policies.get(id);
  if (!policy && !parsed.ids.has(id)) {
    violations.push({ path: `services[${i}].signaturePolicyId`, code: "spec_invalid", message: `no signature policy with id "${id}" in signaturePolicies` });
  }
  return policy;
}
