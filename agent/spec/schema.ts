// docs/reference.md §2: the bake spec. The zod schemas below are the one
// description of every field (strict objects: unknown keys are violations at
// their own path); the cross-field rules (rules.ts) run on whatever parsed, so
// that every violation is reported at once, each with its JSON path and code.
// Nothing here fetches or pulls anything.
import * as z from "zod";
import type { ErrorCode } from "../errors/codes.ts";
import type { ImageReference } from "./reference.ts";
import type { EcrHost } from "./registry.ts";
import { checkCredentials, checkServices } from "./rules.ts";
import { jsonSyntaxMessage } from "../errors/json-syntax.ts";
import type { SignaturePolicy } from "./public-keys.ts";
import { checkPolicies } from "./policies.ts";

export interface Violation {
  path: string;
  code: Extract<ErrorCode, "spec_invalid" | "credential_not_found" | "registry_mismatch">;
  message: string;
}

/** More than a box runs: a spec is untrusted input, and validation stays small and linear. */
export const MAX_SERVICES = 256;
export const MAX_CREDENTIALS = 64;
/** Longer than any reference Docker accepts (host 253, path 255, tag 128, a sha512 digest). */
const MAX_IMAGE_LENGTH = 1024;

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const idString = (what: string) => z.string().regex(ID, `${what} must be 1-128 letters, digits, '_', '.' or '-'`);

const credentialShape = {
  id: idString("id"),
  type: z.enum(["token", "ecr"]),
  label: z.string().max(256).optional(),
  /** As written in the spec. */
  registry: z.string(),
  username: z.string().min(1).max(1024).optional(),
  /** The SSM parameter holding the secret (token credentials); validation resolves it under the prefix. */
  parameterName: z.string().min(1).max(2048).optional(),
};

const serviceShape = {
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "name must be 1-63 letters, digits, '_', '.' or '-'"),
  image: z.string().min(1).max(MAX_IMAGE_LENGTH),
  registryCredentialId: z.string().min(1).optional(),
  catalog: z.boolean().optional(),
  /** docs/reference.md §2a: the signature policy the image must verify with (catalog services too). */
  signaturePolicyId: z.string().min(1).optional(),
};

/** More policies than a box's services could name; a spec is untrusted input. */
export const MAX_POLICIES = 64;
/** Enough for a key rotation across teams; each key is tried on every signature found. */
export const MAX_POLICY_KEYS = 16;

/** docs/reference.md §2a: a signature policy. Each key's own rules (PEM, kind, size) are policies.ts's, at the key's path. */
const policyShape = {
  id: idString("id"),
  type: z.literal("cosign-key", { error: 'type must be "cosign-key": cosign signatures checked with the policy\'s public keys (keyless and Notation are not supported)' }),
  label: z.string().max(256).optional(),
  publicKeys: z.array(z.string()).min(1, "a policy needs at least one public key").max(MAX_POLICY_KEYS, `a policy holds at most ${MAX_POLICY_KEYS} public keys`),
};

const specSchema = z.strictObject({
  bakeId: idString("bakeId"),
  orgId: z.string().min(1).max(128),
  registryCredentials: z
    .array(z.strictObject(credentialShape))
    .max(MAX_CREDENTIALS, `a spec holds at most ${MAX_CREDENTIALS} credentials`)
    .default([]),
  services: z
    .array(z.strictObject(serviceShape))
    .min(1, "a bake needs at least one service")
    .max(MAX_SERVICES, `a spec holds at most ${MAX_SERVICES} services`),
  signaturePolicies: z
    .array(z.strictObject(policyShape))
    .max(MAX_POLICIES, `a spec holds at most ${MAX_POLICIES} signature policies`)
    .optional(),
});

export type CredentialShape = typeof credentialShape;
export type ServiceShape = typeof serviceShape;
export type PolicyShape = typeof policyShape;
type Output<S extends z.ZodRawShape> = z.output<z.ZodObject<S>>;

/** A credential as the bake uses it: the spec's fields, and what validation derives from them. */
export type Credential = Output<typeof credentialShape> & {
  /** The registry's username is the secret itself (DigitalOcean): log in with the secret as username, never show it. */
  usernameIsSecret?: boolean;
  ecr?: EcrHost;
};

/** A service as the bake uses it: its credential and signature policy looked up, its image parsed; `catalog` only decides validation. */
export type Service = Omit<Output<typeof serviceShape>, "registryCredentialId" | "catalog" | "signaturePolicyId"> & {
  ref: ImageReference;
  credential?: Credential;
  /** docs/reference.md §2a: the policy the image's signature must verify with. */
  signaturePolicy?: SignaturePolicy;
};

export interface BakeSpec {
  bakeId: string;
  orgId: string;
  credentials: Credential[];
  services: Service[];
}

export type ValidationResult = { ok: true; spec: BakeSpec } | { ok: false; violations: Violation[] };

/** JavaScript-style path: keys joined by `.`, indices in brackets, root empty. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out;
}

function zodViolations(error: z.ZodError): Violation[] {
  return error.issues.flatMap((issue): Violation[] =>
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), code: "spec_invalid", message: `unknown key "${key}"` }))
      : [{ path: formatPath(issue.path), code: "spec_invalid", message: issue.message }],
  );
}

/** What the rules read of one element: its value for each field that has the field's type, which fields it gives, which pass their own schema. */
export interface Fields<S extends z.ZodRawShape> {
  readonly value: Partial<Output<S>>;
  readonly given: (key: keyof S & string) => boolean;
  readonly valid: (key: keyof S & string) => boolean;
}

// A field's bounds and pattern are zod's to report; the rules read any value of
// the field's type, as a violation elsewhere in an element does not hide the
// element's other violations.
function fieldType(field: z.core.$ZodType): z.core.$ZodType {
  const inner = field instanceof z.ZodOptional ? field.unwrap() : field;
  return inner instanceof z.ZodString ? z.string() : inner;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The elements of a list the rules read: past its bound, only zod's count violation is reported. */
function elements<S extends z.ZodRawShape>(shape: S, list: unknown, max: number): (Fields<S> | undefined)[] {
  if (!Array.isArray(list) || list.length > max) return [];
  return list.map((raw: unknown) => (isObject(raw) ? fieldsOf(shape, raw) : undefined));
}

function fieldsOf<S extends z.ZodRawShape>(shape: S, raw: Record<string, unknown>): Fields<S> {
  const value: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(shape)) {
    const typed = z.safeParse(fieldType(field), raw[key]);
    if (raw[key] !== undefined && typed.success) value[key] = typed.data;
  }
  return {
    // Each key set above holds its own field's parsed output.
    value: value as Partial<Output<S>>,
    given: (key) => raw[key] !== undefined,
    valid: (key) => shape[key] !== undefined && z.safeParse(shape[key], raw[key]).success,
  };
}

export function validateSpec(input: unknown, opts: { ssmParameterPrefix: string }): ValidationResult {
  const parsed = specSchema.safeParse(input);
  const violations = parsed.success ? [] : zodViolations(parsed.error);
  const root = isObject(input) ? input : {};
  const credentials = checkCredentials(elements(credentialShape, root["registryCredentials"], MAX_CREDENTIALS), opts.ssmParameterPrefix);
  const policies = checkPolicies(elements(policyShape, root["signaturePolicies"], MAX_POLICIES));
  const services = checkServices(elements(serviceShape, root["services"], MAX_SERVICES), credentials, policies);
  violations.push(...credentials.violations, ...policies.violations, ...services.violations);
  if (violations.length > 0 || !parsed.success) return { ok: false, violations: dedupe(violations) };
  return {
    ok: true,
    spec: { bakeId: parsed.data.bakeId, orgId: parsed.data.orgId, credentials: [...credentials.usable.values()], services: services.services },
  };
}

function dedupe(vs: Violation[]): Violation[] {
  const seen = new Set<string>();
  return vs.filter((v) => {
    const k = `${v.path}\u0000${v.code}\u0000${v.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Parses spec text; a file that is not JSON is one violation at the root. */
export function parseSpecText(text: string, opts: { ssmParameterPrefix: string }): ValidationResult {
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    return { ok: false, violations: [{ path: "", code: "spec_invalid", message: `not valid JSON: ${jsonSyntaxMessage(err)}` }] };
  }
  return validateSpec(input, opts);
}
