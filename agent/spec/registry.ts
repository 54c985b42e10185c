// Registry host names: the host-only form credentials use (docs/reference.md §2), Docker
// Hub's aliases, the login server address Docker expects, and ECR's private
// registry hosts in every partition (the anchored regex of
// amazon-ecr-credential-helper and kubelet).

export const DOCKER_HUB = "docker.io";
/** The `serveraddress` Docker Hub's credentials are filed under. */
const DOCKER_HUB_SERVER_ADDRESS = "https://index.docker.io/v1/";

const HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

// The registry host grammar of distribution/reference's regexp.go (domainAndPort;
// the commit followed is cited in reference.ts): image references and
// credentials must agree on what a host is, or a credential could name a host
// no image can live on, and the other way round.
const DOMAIN_NAME_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
// Compressed or full IPv6 in brackets; zone identifiers (`%eth0`) and
// IPv4-mapped forms are deliberately outside Docker's grammar.
const IPV6_ADDRESS = "\\[(?:[a-fA-F0-9:]+)\\]";
/** A registry host (DNS-like name, IPv4, or bracketed IPv6) with an optional `:port`. */
export const DOMAIN_AND_PORT = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?`;
const HOST_RE = new RegExp(`^${DOMAIN_AND_PORT}$`);
const PORT_RE = /:([0-9]+)$/;

/** Why a credential's `registry` is not a bare host[:port], or undefined if it is. */
export function hostProblem(registry: string): string | undefined {
  if (registry.length === 0) return "must not be empty";
  if (/\s/.test(registry)) return "must not contain whitespace";
  if (registry.includes("://")) return "must be a host only, without a scheme (e.g. ghcr.io, not https://ghcr.io)";
  if (registry.includes("@")) return "must not contain credentials";
  if (registry.includes("/")) return "must be a host only, without a path";
  if (!HOST_RE.test(registry)) {
    if (/^[a-fA-F0-9]*:[a-fA-F0-9]*:/.test(registry)) return "is an IPv6 address without brackets: write it as [fd00::1] or [fd00::1]:5000";
    return "is not a valid host name, IPv4 address or [IPv6] address with an optional :port";
  }
  // The grammar takes any digits as a port; one Docker cannot dial is refused here, where the operator can still fix it.
  const port = PORT_RE.exec(registry)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return "has a port outside 1-65535";
  if (registry.length > 253) return "is longer than 253 characters";
  return undefined;
}

/** The registry's identity: lower-case, Docker Hub's aliases folded to `docker.io`. */
export function normalizeRegistry(host: string): string {
  const h = host.toLowerCase();
  return HUB_ALIASES.has(h) ? DOCKER_HUB : h;
}

/**
 * The registry's identity, HTTPS's default port left out: `registry.digitalocean.com:443`
 * is the same registry as `registry.digitalocean.com` wherever what a registry
 * is decides how a secret is treated.
 */
export function registryIdentity(host: string): string {
  return normalizeRegistry(host.replace(/:443$/, ""));
}

export function isDockerHub(host: string): boolean {
  return normalizeRegistry(host) === DOCKER_HUB;
}

/** The `serveraddress` for POST /auth and X-Registry-Auth. */
export function serverAddress(host: string): string {
  return isDockerHub(host) ? DOCKER_HUB_SERVER_ADDRESS : normalizeRegistry(host);
}

export interface EcrHost {
  accountId: string;
  region: string;
  fips: boolean;
  dualStack: boolean;
}

const ECR_RE =
  /^(\d{12})\.dkr[.-]ecr(-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;

/** Parses an ECR private registry host; undefined for anything else, look-alikes included. */
export function parseEcrHost(host: string): EcrHost | undefined {
  const m = ECR_RE.exec(host.toLowerCase());
  if (!m) return undefined;
  return { accountId: m[1]!, region: m[3]!, fips: m[2] !== undefined, dualStack: host.toLowerCase().includes(".dkr-ecr") };
}
