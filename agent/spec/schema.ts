// docs/reference.md §2: the bake spec. Shape is checked with zod (strict objects: unknown keys
// are violations at their own path); the cross-field rules run on whatever
// parsed, so that every violation is reported at once, each with its JSON path
// and code. Nothing here fetches or pulls anything.
import * as z from "zod";
import type { ErrorCode } from "../errors/codes.ts";
import { parseReference, ReferenceError, type ImageReference } from "./reference.ts";
import { hostProblem, normalizeRegistry, parseEcrHost, type EcrHost } from "./registry.ts";
import { usernameIsToken } from "./username.ts";
import { jsonSyntaxMessage } from "../errors/json-syntax.ts";
import type { SignaturePolicy } from "../signatures/types.ts";
import { parsePolicies, policiesSchema, servicePolicy, signaturePolicyIdSchema } from "./policies.ts";

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

const credentialSchema = z.strictObject({
  id: idString("id"),
  type: z.enum(["token", "ecr"]),
  label: z.string().max(256).optional(),
  registry: z.string(),
  username: z.string().min(1).max(1024).optional(),
  parameterName: z.string().min(1).max(2048).optional(),
});

const serviceSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "name must be 1-63 letters, digits, '_', '.' or '-'"),
  image: z.string().min(1).max(MAX_IMAGE_LENGTH),
  registryCredentialId: z.string().min(1).optional(),
  catalog: z.boolean().optional(),
  signaturePolicyId: signaturePolicyIdSchema.optional(),
});

const specSchema = z.strictObject({
  bakeId: idString("bakeId"),
  orgId: z.string().min(1).max(128),
  registryCredentials: z.array(credentialSchema).max(MAX_CREDENTIALS, `a spec holds at most ${MAX_CREDENTIALS} credentials`).default([]),
  services: z.array(serviceSchema).min(1, "a bake needs at least one service").max(MAX_SERVICES, `a spec holds at most ${MAX_SERVICES} services`),
  signaturePolicies: policiesSchema.optional(),
});

export interface Credential {
  id: string;
  type: "token" | "ecr";
  label?: string;
  /** As written in the spec. */
  registry: string;
  username?: string;
  /** The SSM parameter holding the secret (token credentials). */
  parameterName?: string;
  /** The registry's username is the secret itself (DigitalOcean): log in with the secret as username, never show it. */
  usernameIsSecret?: boolean;
  ecr?: EcrHost;
}

export interface Service {
  name: string;
  image: string;
  ref: ImageReference;
  catalog: boolean;
  credential?: Credential;
  /** docs/reference.md §2a: the policy the image's signature must verify with. */
  signaturePolicy?: SignaturePolicy;
}

export interface BakeSpec {
  bakeId: string;
  orgId: string;
  credentials: Credential[];
  services: Service[];
}

export type ValidationResult = { ok: true; spec: BakeSpec } | { ok: false; violations: Violation[] };

/** JavaScript-style path: keys joined by `.`, indices in brackets, root empty. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out;
}

function zodViolations(error: z.ZodError): Violation[] {
  const out: Violation[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({ path: formatPath([...issue.path, key]), code: "spec_invalid", message: `unknown key "${key}"` });
      }
    } else {
      out.push({ path: formatPath(issue.path), code: "spec_invalid", message: issue.message });
    }
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

export function validateSpec(input: unknown, opts: { ssmParameterPrefix: string }): ValidationResult {
  const violations: Violation[] = [];
  const parsed = specSchema.safeParse(input);
  if (!parsed.success) violations.push(...zodViolations(parsed.error));
  const root = isObject(input) ? input : {};
  // Past the bounds, only zod's count violation is reported: no rule runs over an oversized list.
  const within = (v: unknown, max: number): unknown[] => (Array.isArray(v) && v.length <= max ? v : []);
  const rawCreds = within(root["registryCredentials"], MAX_CREDENTIALS);
  const rawServices = within(root["services"], MAX_SERVICES);
  const rawCredIds = new Set(rawCreds.flatMap((c) => (isObject(c) && typeof c["id"] === "string" ? [c["id"]] : [])));

  const credentials = new Map<string, Credential>();
  rawCreds.forEach((c: unknown, i: number) => {
    if (!isObject(c)) return;
    const at = (k: string) => `registryCredentials[${i}].${k}`;
    const id = str(c["id"]);
    const type = str(c["type"]);
    const registry = str(c["registry"]);
    if (id !== undefined && credentials.has(id)) {
      violations.push({ path: at("id"), code: "spec_invalid", message: `duplicate credential id "${id}"` });
    }
    let ok = id !== undefined && (type === "token" || type === "ecr") && registry !== undefined;
    if (registry !== undefined) {
      const problem = hostProblem(registry);
      if (problem) {
        violations.push({ path: at("registry"), code: "spec_invalid", message: `registry "${registry}" ${problem}` });
        ok = false;
      }
    }
    const cred: Credential = { id: id ?? "", type: type === "ecr" ? "ecr" : "token", registry: registry ?? "" };
    const label = str(c["label"]);
    if (label !== undefined) cred.label = label;
    if (type === "ecr" && registry !== undefined && !hostProblem(registry)) {
      const ecr = parseEcrHost(registry);
      if (!ecr) {
        const why =
          normalizeRegistry(registry) === "public.ecr.aws"
            ? "ECR Public (public.ecr.aws) is not a private registry; use a catalog or anonymous image instead"
            : "is not an ECR private registry host (<12 digits>.dkr.ecr.<region>.amazonaws.com or another partition's form)";
        violations.push({ path: at("registry"), code: "spec_invalid", message: `registry "${registry}": ${why}` });
        ok = false;
      } else cred.ecr = ecr;
      if (c["parameterName"] !== undefined) {
        violations.push({ path: at("parameterName"), code: "spec_invalid", message: "ecr credentials have no stored secret, so no parameterName" });
      }
    }
    if (type === "token") {
      const username = str(c["username"]);
      if (username === undefined) {
        if (!Object.hasOwn(c, "username")) {
          violations.push({ path: at("username"), code: "spec_invalid", message: "token credentials need a username" });
        }
        ok = false;
      } else {
        cred.username = username;
        if (registry !== undefined && usernameIsToken(registry)) cred.usernameIsSecret = true;
      }
      const defaultName = `${opts.ssmParameterPrefix}${id ?? ""}`;
      const given = str(c["parameterName"]);
      if (given?.includes(":")) {
        violations.push({
          path: at("parameterName"),
          code: "spec_invalid",
          message: `parameterName "${given}" holds ":": SSM reads name:version and name:label as selectors, and a spec may not pick an older version of a secret`,
        });
        ok = false;
      } else if (given !== undefined) {
        const normalized = given.startsWith("/") ? given : `/${given}`;
        if (!normalized.startsWith(opts.ssmParameterPrefix) || normalized.length === opts.ssmParameterPrefix.length || /(^|\/)\.\.?(\/|$)/.test(normalized)) {
          violations.push({
            path: at("parameterName"),
            code: "spec_invalid",
            message: `parameterName "${given}" is outside the configured prefix ${opts.ssmParameterPrefix}: a spec may only name parameters under it`,
          });
          ok = false;
        } else cred.parameterName = normalized;
      } else cred.parameterName = defaultName;
    }
    if (ok && id !== undefined && !credentials.has(id)) credentials.set(id, cred);
  });

  const policies = parsePolicies(root["signaturePolicies"], violations);
  const services: Service[] = [];
  const names = new Set<string>();
  /** Image (canonical reference) → the credential the first service naming it gave it, or null for none. */
  const imageCredential = new Map<string, { credId: string | null; service: string }>();
  rawServices.forEach((s: unknown, i: number) => {
    if (!isObject(s)) return;
    const at = (k: string) => `services[${i}].${k}`;
    const name = str(s["name"]);
    if (name !== undefined) {
      if (names.has(name)) violations.push({ path: at("name"), code: "spec_invalid", message: `duplicate service name "${name}"` });
      names.add(name);
    }
    const image = str(s["image"]);
    let ref: ImageReference | undefined;
    if (image !== undefined && image.length > 0 && image.length <= MAX_IMAGE_LENGTH) {
      try {
        ref = parseReference(image);
      } catch (err) {
        if (!(err instanceof ReferenceError)) throw err;
        violations.push({ path: at("image"), code: "spec_invalid", message: `"${image}": ${err.message}` });
      }
    }
    const catalog = s["catalog"] === true;
    const credId = str(s["registryCredentialId"]);
    let credential: Credential | undefined;
    if (credId !== undefined) {
      if (catalog) {
        violations.push({
          path: at("registryCredentialId"),
          code: "spec_invalid",
          message: "registryCredentialId is only valid on custom services; catalog images come from their public registries",
        });
      } else if (!credentials.has(credId) && !rawCredIds.has(credId)) {
        violations.push({ path: at("registryCredentialId"), code: "credential_not_found", message: `no credential with id "${credId}" in registryCredentials` });
      } else {
        credential = credentials.get(credId);
        if (credential && ref && normalizeRegistry(credential.registry) !== ref.registry) {
          violations.push({
            path: at("image"),
            code: "registry_mismatch",
            message: `image "${image}" lives on ${ref.registry} but credential "${credId}" is for ${normalizeRegistry(credential.registry)}`,
          });
        }
      }
    }
    if (ref) {
      const first = imageCredential.get(ref.canonical);
      const mine = credId ?? null;
      if (!first) imageCredential.set(ref.canonical, { credId: mine, service: name ?? `services[${i}]` });
      else if (first.credId !== mine) {
        violations.push({
          path: at("registryCredentialId"),
          code: "spec_invalid",
          message: `image "${image}" is also pulled for service "${first.service}" ${first.credId ? `with credential "${first.credId}"` : "without a credential"}: one image is pulled once, with one credential`,
        });
      }
    }
    const signaturePolicy = servicePolicy(s, i, policies, violations);
    if (name !== undefined && image !== undefined && ref) {
      services.push({ name, image, ref, catalog, ...(credential ? { credential } : {}), ...(signaturePolicy ? { signaturePolicy } : {}) });
    }
  });

  if (violations.length > 0 || !parsed.success) return { ok: false, violations: dedupe(violations) };
  return {
    ok: true,
    spec: { bakeId: parsed.data.bakeId, orgId: parsed.data.orgId, credentials: [...credentials.values()], services },
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
