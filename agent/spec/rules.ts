// docs/reference.md §2: the bake spec's rules that span fields, elements or
// lists. Each reads the fields of one element that have their field's type
// (schema.ts), so that an element zod refused is still judged, and reports at
// the key it names.
import { parseReference, ImageReferenceError, type ImageReference } from "./reference.ts";
import { hostProblem, normalizeRegistry, parseEcrHost } from "./registry.ts";
import { usernameIsToken } from "./username.ts";
import { servicePolicy, type CheckedPolicies } from "./policies.ts";
import type { Credential, CredentialShape, Fields, Service, ServiceShape, Violation } from "./schema.ts";

type Report = (key: string, message: string, code?: Violation["code"]) => void;

function reporter(violations: Violation[], at: string): Report {
  return (key, message, code = "spec_invalid") => violations.push({ path: `${at}.${key}`, code, message });
}

export interface CheckedCredentials {
  /** The credentials that passed every rule, by id: the first of each id. */
  readonly usable: ReadonlyMap<string, Credential>;
  /** Every id the spec declares, usable or not: a service naming one is not told it does not exist. */
  readonly declared: ReadonlySet<string>;
  readonly violations: Violation[];
}

export function checkCredentials(list: readonly (Fields<CredentialShape> | undefined)[], prefix: string): CheckedCredentials {
  const usable = new Map<string, Credential>();
  const declared = new Set<string>();
  const violations: Violation[] = [];
  list.forEach((c, i) => {
    if (!c) return;
    const report = reporter(violations, `registryCredentials[${i}]`);
    const { id } = c.value;
    if (id !== undefined) declared.add(id);
    if (id !== undefined && usable.has(id)) report("id", `duplicate credential id "${id}"`);
    const credential = credentialOf(c, prefix, report);
    if (credential && !usable.has(credential.id)) usable.set(credential.id, credential);
  });
  return { usable, declared, violations };
}

/** The credential an element describes, or undefined when a rule refused it. */
function credentialOf(c: Fields<CredentialShape>, prefix: string, report: Report): Credential | undefined {
  // A credential's username and parameterName are a token's: an ECR credential carries neither.
  const { id, type, registry, username, parameterName, ...rest } = c.value;
  const hostOk = registry !== undefined && registryIsHost(registry, report);
  let derived: Partial<Credential> | undefined;
  if (type === "ecr") derived = hostOk ? ecrFields(registry, c, report) : undefined;
  else if (type === "token") derived = tokenFields({ id, registry, username, parameterName }, c, prefix, report);
  if (id === undefined || type === undefined || registry === undefined || !hostOk || !derived) return undefined;
  return { ...rest, id, type, registry, ...derived };
}

/** A credential's registry is a bare host[:port], as an image reference's registry is. */
function registryIsHost(registry: string, report: Report): boolean {
  const problem = hostProblem(registry);
  if (problem) report("registry", `registry "${registry}" ${problem}`);
  return problem === undefined;
}

/** An ECR credential names a private ECR registry, and has no stored secret to name. */
function ecrFields(registry: string, c: Fields<CredentialShape>, report: Report): Partial<Credential> | undefined {
  const ecr = parseEcrHost(registry);
  if (!ecr) {
    const why =
      normalizeRegistry(registry) === "public.ecr.aws"
        ? "ECR Public (public.ecr.aws) is not a private registry; use a catalog or anonymous image instead"
        : "is not an ECR private registry host (<12 digits>.dkr.ecr.<region>.amazonaws.com or another partition's form)";
    report("registry", `registry "${registry}": ${why}`);
  }
  if (c.given("parameterName")) report("parameterName", "ecr credentials have no stored secret, so no parameterName");
  return ecr ? { ecr } : undefined;
}

/** A token credential has a username, and its secret's SSM parameter under the prefix. */
function tokenFields(
  { id, registry, username, parameterName: given }: Partial<Credential>,
  c: Fields<CredentialShape>,
  prefix: string,
  report: Report,
): Partial<Credential> | undefined {
  if (username === undefined && !c.given("username")) report("username", "token credentials need a username");
  const parameterName = tokenParameterName(given, id, prefix, report);
  if (username === undefined || parameterName === undefined) return undefined;
  const usernameIsSecret = registry !== undefined && usernameIsToken(registry);
  return { username, ...(usernameIsSecret ? { usernameIsSecret } : {}), parameterName };
}

/** The spec's parameterName, if it is a plain name under the prefix, or the prefix and the credential's id. */
function tokenParameterName(given: string | undefined, id: string | undefined, prefix: string, report: Report): string | undefined {
  if (given === undefined) return `${prefix}${id ?? ""}`;
  if (given.includes(":")) {
    report(
      "parameterName",
      `parameterName "${given}" holds ":": SSM reads name:version and name:label as selectors, and a spec may not pick an older version of a secret`,
    );
    return undefined;
  }
  const normalized = given.startsWith("/") ? given : `/${given}`;
  if (!normalized.startsWith(prefix) || normalized.length === prefix.length || /(^|\/)\.\.?(\/|$)/.test(normalized)) {
    report("parameterName", `parameterName "${given}" is outside the configured prefix ${prefix}: a spec may only name parameters under it`);
    return undefined;
  }
  return normalized;
}

/** Image (canonical reference) → the credential the first service naming it gave it, or null for none. */
type ImageCredentials = Map<string, { credId: string | null; service: string }>;

export function checkServices(
  list: readonly (Fields<ServiceShape> | undefined)[],
  credentials: CheckedCredentials,
  policies: CheckedPolicies,
): { services: Service[]; violations: Violation[] } {
  const services: Service[] = [];
  const violations: Violation[] = [];
  const names = new Set<string>();
  const imageCredentials: ImageCredentials = new Map();
  list.forEach((s, i) => {
    if (!s) return;
    const report = reporter(violations, `services[${i}]`);
    const { registryCredentialId, catalog, signaturePolicyId, ...rest } = s.value;
    const { name } = rest;
    if (name !== undefined) uniqueName(name, names, report);
    const image = rest.image !== undefined && s.valid("image") ? imageOf(rest.image, report) : undefined;
    const credential = serviceCredential(registryCredentialId, catalog === true, credentials, report);
    if (credential && image) registryMatches(credential, image, report);
    if (image) oneCredentialPerImage(image, { credId: registryCredentialId ?? null, service: name ?? `services[${i}]` }, imageCredentials, report);
    // Any service may name a policy, catalog ones too (docs/reference.md §2a).
    const signaturePolicy = servicePolicy(signaturePolicyId, policies, report);
    if (name !== undefined && image) {
      services.push({ ...rest, name, image: image.written, ref: image.ref, ...(credential ? { credential } : {}), ...(signaturePolicy ? { signaturePolicy } : {}) });
    }
  });
  return { services, violations };
}

function uniqueName(name: string, names: Set<string>, report: Report): void {
  if (names.has(name)) report("name", `duplicate service name "${name}"`);
  names.add(name);
}

/** A service's image as the spec writes it, and parsed. */
interface Image {
  written: string;
  ref: ImageReference;
}

function imageOf(written: string, report: Report): Image | undefined {
  try {
    return { written, ref: parseReference(written) };
  } catch (err) {
    if (!(err instanceof ImageReferenceError)) throw err;
    report("image", `"${written}": ${err.message}`);
    return undefined;
  }
}

/** The credential a service names: one the spec declares, and only on a custom service. */
function serviceCredential(credId: string | undefined, catalog: boolean, credentials: CheckedCredentials, report: Report): Credential | undefined {
  if (credId === undefined) return undefined;
  if (catalog) {
    report("registryCredentialId", "registryCredentialId is only valid on custom services; catalog images come from their public registries");
    return undefined;
  }
  if (!credentials.declared.has(credId)) {
    report("registryCredentialId", `no credential with id "${credId}" in registryCredentials`, "credential_not_found");
    return undefined;
  }
  return credentials.usable.get(credId);
}

/** A service's credential is for the registry its image lives on (Docker Hub's names are one registry). */
function registryMatches(credential: Credential, { written, ref }: Image, report: Report): void {
  const registry = normalizeRegistry(credential.registry);
  if (registry !== ref.registry) {
    report("image", `image "${written}" lives on ${ref.registry} but credential "${credential.id}" is for ${registry}`, "registry_mismatch");
  }
}

/** One image is pulled once, with one credential: a later service naming it with another is refused. */
function oneCredentialPerImage({ written, ref }: Image, mine: { credId: string | null; service: string }, seen: ImageCredentials, report: Report): void {
  const first = seen.get(ref.canonical);
  if (!first) seen.set(ref.canonical, mine);
  else if (first.credId !== mine.credId) {
    const how = first.credId ? `with credential "${first.credId}"` : "without a credential";
    report("registryCredentialId", `image "${written}" is also pulled for service "${first.service}" ${how}: one image is pulled once, with one credential`);
  }
}
