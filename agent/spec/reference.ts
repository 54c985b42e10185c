// Docker's image reference grammar, as github.com/distribution/reference
// defines it (regexp.go@00a09fa3, reference.go@0965666a, normalize.go@aeed5e66,
// digests validated as opencontainers/go-digest v1.0.0 does with sha256 and
// sha512 registered, as dockerd has them). parseReference is that package's
// ParseAnyReference restricted to named references, with TagNameOnly's
// `:latest` default; the test file ports the package's own test tables.
//
// Where the agent differs, on purpose:
// - Docker Hub is whatever normalizeRegistry says it is: `registry-1.docker.io`
//   and any letter case of the Hub names fold into `docker.io` (upstream folds
//   only `index.docker.io`), so an image is pulled, matched to its credential
//   and found in RepoDigests under the one name Docker uses for the Hub.
// - A reference with both a tag and a digest keeps both (ParseDockerRef would
//   drop the tag); the digest is what gets pulled and verified.
// - A first component taken for a registry host (it has a `.` or `:`) that is
//   no valid host is refused: upstream's Parse then reads the whole name as a
//   path with no registry at all, which names nothing the agent could pull.
// - A bare digest or 64-hex image ID, which ParseAnyReference returns as a
//   digest reference, is refused: it names no repository to pull from.
import { DOCKER_HUB, DOMAIN_AND_PORT, isDockerHub, normalizeRegistry } from "./registry.ts";

export interface ImageReference {
  /** Registry identity: lower-case, `docker.io` for every Docker Hub form (credentials are matched on it). */
  registry: string;
  /** Repository path inside the registry (`library/redis`). */
  path: string;
  tag?: string;
  digest?: string;
  /** `host/path`, the name Docker itself uses (the host as written, except Docker Hub's, which is `docker.io`). */
  name: string;
  /** The full normalised reference (`docker.io/library/redis:7`). */
  canonical: string;
}

const ALPHANUMERIC = "[a-z0-9]+";
// One period, one or two underscores, or any number of dashes.
const SEPARATOR = "(?:[._]|__|[-]+)";
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
const NAME = `(?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME}`;

// JavaScript's backtracking picks the same submatches as Go's leftmost-first
// RE2 here, so the domain/path split is upstream's.
const REFERENCE_RE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const ANCHORED_NAME_RE = new RegExp(`^(?:(${DOMAIN_AND_PORT})/)?(${REMOTE_NAME})$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;
const DOMAIN_AND_PORT_RE = new RegExp(`^${DOMAIN_AND_PORT}$`);
const PATH_COMPONENT_RE = new RegExp(`^${PATH_COMPONENT}$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const DIGEST_RE = new RegExp(`^${DIGEST}$`);

/** Upstream's RepositoryNameTotalLengthMax: it bounds the path, not the host. */
const REPOSITORY_NAME_TOTAL_LENGTH_MAX = 255;
const LOCALHOST = "localhost";
const OFFICIAL_REPO_PREFIX = "library/";
const DEFAULT_TAG = "latest";

// go-digest v1.0.0: the algorithms dockerd registers, each with its encoding.
const ENCODED_DIGEST = new Map([
  ["sha256", { re: /^[a-f0-9]{64}$/, length: 64 }],
  ["sha384", { re: /^[a-f0-9]{96}$/, length: 96 }],
  ["sha512", { re: /^[a-f0-9]{128}$/, length: 128 }],
]);
// go-digest's DigestRegexp: what it takes for a digest of an algorithm it lacks.
const GO_DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export class ImageReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageReferenceError";
  }
}

/** go-digest's Digest.Validate: undefined for a valid digest, else why not. */
function digestProblem(d: string): string | undefined {
  const i = d.indexOf(":");
  if (i <= 0 || i + 1 === d.length) return "invalid checksum digest format";
  const algorithm = d.slice(0, i);
  const encoded = ENCODED_DIGEST.get(algorithm);
  if (!encoded) {
    if (!GO_DIGEST_RE.test(d)) return `invalid checksum digest format: "${algorithm}" is not a digest algorithm`;
    return `unsupported digest algorithm "${algorithm}": Docker takes sha256, sha384 or sha512`;
  }
  if (!encoded.re.test(d.slice(i + 1))) return `invalid checksum digest format: a ${algorithm} digest is ${encoded.length} lower-case hex digits`;
  return undefined;
}

/**
 * normalize.go's splitDockerDomain: the first component is a registry host when
 * it is `localhost`, has a `.` or `:`, or has an upper-case letter (a path
 * cannot); `remainder` keeps any tag and digest. `explicit` says the host was
 * written, not implied.
 */
function splitDockerDomain(s: string): { domain: string; remainder: string; explicit: boolean } {
  const slash = s.indexOf("/");
  if (slash < 0) return { domain: DOCKER_HUB, remainder: OFFICIAL_REPO_PREFIX + s, explicit: false };
  const maybeDomain = s.slice(0, slash);
  const rest = s.slice(slash + 1);
  let domain: string;
  let remainder: string;
  let explicit = true;
  if (maybeDomain === LOCALHOST) [domain, remainder] = [maybeDomain, rest];
  // Upstream folds `index.docker.io` alone here; the product's Hub names are normalizeRegistry's.
  else if (isDockerHub(maybeDomain)) [domain, remainder] = [DOCKER_HUB, rest];
  else if (/[.:]/.test(maybeDomain)) [domain, remainder] = [maybeDomain, rest];
  else if (maybeDomain.toLowerCase() !== maybeDomain) [domain, remainder] = [maybeDomain, rest];
  else [domain, remainder, explicit] = [DOCKER_HUB, s, false];
  if (domain === DOCKER_HUB && !remainder.includes("/")) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder, explicit };
}

/** The first part of a reference that breaks the grammar, said for an operator. */
function formatProblem(input: string, domain: string | undefined, remainder: string): string | undefined {
  if (/\s/.test(input)) return "it contains whitespace";
  if (input.includes("://")) return "an image reference has no URL scheme (ghcr.io/acme/api, not https://ghcr.io/acme/api)";
  if (domain === undefined && input.startsWith("[")) return "a bracketed IPv6 address is a registry host, so a /repository must follow it";
  if (domain !== undefined && !DOMAIN_AND_PORT_RE.test(domain)) {
    return `registry host "${domain}" is not a host name, IPv4 address or [IPv6] address with an optional :port`;
  }
  const at = remainder.indexOf("@");
  const nameAndTag = at < 0 ? remainder : remainder.slice(0, at);
  if (at >= 0 && !DIGEST_RE.test(remainder.slice(at + 1))) {
    return `digest "${remainder.slice(at + 1)}" is not <algorithm>:<at least 32 hex digits>`;
  }
  const colon = nameAndTag.indexOf(":");
  const path = colon < 0 ? nameAndTag : nameAndTag.slice(0, colon);
  if (colon >= 0 && !TAG_RE.test(nameAndTag.slice(colon + 1))) {
    return `tag "${nameAndTag.slice(colon + 1)}" must be 1 to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`;
  }
  for (const component of path.split("/")) {
    if (component === "") return `repository path "${path}" has an empty component`;
    if (!PATH_COMPONENT_RE.test(component)) {
      return `path component "${component}" must be lower-case letters and digits joined by ".", "_", "__" or "-", with none at either end`;
    }
  }
  return undefined;
}

export function parseReference(input: string): ImageReference {
  if (input.length === 0) throw new ImageReferenceError("invalid reference format: the image reference is empty");
  if (IDENTIFIER_RE.test(input)) {
    throw new ImageReferenceError("invalid repository name, cannot specify 64-byte hexadecimal strings: that is an image ID; pin an image as name@sha256:<digest>");
  }
  if (digestProblem(input) === undefined) throw new ImageReferenceError("reference has no name: a digest alone is not an image; pin an image as name@sha256:<digest>");

  const { domain, remainder, explicit } = splitDockerDomain(input);
  // Upstream cuts the repository name at the first ":" only, which blames an upper-case digest
  // algorithm on the name; such a digest is refused either way, so cutting at "@" too changes the message alone.
  const remote = remainder.split(/[:@]/, 1)[0] ?? remainder;
  if (remote.toLowerCase() !== remote) throw new ImageReferenceError(`invalid reference format: repository name (${remote}) must be lowercase`);

  const full = `${domain}/${remainder}`;
  const m = REFERENCE_RE.exec(full);
  if (!m) {
    const lower = full.toLowerCase();
    if (lower !== full && REFERENCE_RE.test(lower)) throw new ImageReferenceError("invalid reference format: repository name must be lowercase");
    const problem = formatProblem(input, explicit ? domain : undefined, remainder);
    throw new ImageReferenceError(`invalid reference format${problem ? `: ${problem}` : ""}`);
  }
  const [, matchedName = "", tag, digest] = m;
  const [, parsedDomain, path = ""] = ANCHORED_NAME_RE.exec(matchedName) ?? [];
  if (parsedDomain !== domain) {
    throw new ImageReferenceError(`invalid reference format: "${domain}" is taken for a registry host (it has a "." or ":") but is not a valid host name`);
  }
  if (path.length > REPOSITORY_NAME_TOTAL_LENGTH_MAX) {
    throw new ImageReferenceError(
      `repository name must not be more than ${REPOSITORY_NAME_TOTAL_LENGTH_MAX} characters: the path after the registry host has ${path.length}`,
    );
  }
  if (digest !== undefined) {
    const problem = digestProblem(digest);
    if (problem) throw new ImageReferenceError(problem);
  }

  const registry = normalizeRegistry(domain);
  const name = `${domain}/${path}`;
  const finalTag = tag === undefined && digest === undefined ? DEFAULT_TAG : tag;
  const canonical = name + (finalTag !== undefined ? `:${finalTag}` : "") + (digest !== undefined ? `@${digest}` : "");
  return { registry, path, name, canonical, ...(finalTag !== undefined ? { tag: finalTag } : {}), ...(digest !== undefined ? { digest } : {}) };
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
