// Docker's image reference grammar (distribution/reference): name, optional
// `:tag`, optional `@sha256:` digest; the domain part is recognised as Docker
// does (a `.` or `:` in the first component, or `localhost`), Docker Hub names
// are normalised to `docker.io/<namespace>/<repo>` (`library/` for official
// images), and no tag and no digest means `:latest`.
import { DOCKER_HUB, normalizeRegistry } from "./registry.ts";

export interface ImageReference {
  /** Normalised registry: `docker.io` for every Docker Hub form. */
  registry: string;
  /** Repository path inside the registry (`library/redis`). */
  path: string;
  tag?: string;
  digest?: string;
  /** `registry/path`, the name Docker itself uses. */
  name: string;
  /** The full normalised reference (`docker.io/library/redis:7`). */
  canonical: string;
}

const ALNUM = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|[-]+)";
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_RE = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const NAME_TOTAL_LENGTH_MAX = 255;

export class ReferenceError extends Error {}

export function parseReference(input: string): ImageReference {
  if (input.length === 0) throw new ReferenceError("image reference is empty");
  if (/\s/.test(input)) throw new ReferenceError("image reference must not contain whitespace");
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw new ReferenceError(`invalid digest "${digest}": expected sha256: and 64 lower-case hex digits`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new ReferenceError(`invalid tag "${tag}"`);
  }
  let domain: string;
  let path: string;
  const slash = rest.indexOf("/");
  const first = slash < 0 ? "" : rest.slice(0, slash);
  if (slash < 0 || (!/[.:]/.test(first) && first !== "localhost" && first.toLowerCase() === first)) {
    domain = DOCKER_HUB;
    path = rest;
  } else {
    domain = first;
    path = rest.slice(slash + 1);
    if (!DOMAIN_RE.test(domain)) throw new ReferenceError(`invalid registry host "${domain}"`);
  }
  if (path !== path.toLowerCase()) throw new ReferenceError("repository name must be lower-case");
  if (!PATH_RE.test(path)) throw new ReferenceError(`invalid repository name "${path}"`);
  const registry = normalizeRegistry(domain);
  if (registry === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  const name = `${registry}/${path}`;
  if (name.length > NAME_TOTAL_LENGTH_MAX) throw new ReferenceError(`repository name is longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  if (tag === undefined && digest === undefined) tag = "latest";
  const canonical = name + (tag !== undefined ? `:${tag}` : "") + (digest !== undefined ? `@${digest}` : "");
  return { registry, path, name, canonical, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** The repository part of a RepoDigests entry (`redis@sha256:…` → `docker.io/library/redis`). */
export function repoDigestName(entry: string): string | undefined {
  const at = entry.indexOf("@");
  if (at < 0) return undefined;
  try {
    return parseReference(entry.slice(0, at)).name;
  } catch {
    return undefined;
  }
}
