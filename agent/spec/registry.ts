// Registry host names: the host-only form credentials use (SPEC §2), Docker
// Hub's aliases, the login server address Docker expects, and ECR's private
// registry hosts in every partition (the anchored regex of
// amazon-ecr-credential-helper and kubelet).

export const DOCKER_HUB = "docker.io";
/** The `serveraddress` Docker Hub's credentials are filed under. */
export const DOCKER_HUB_SERVER_ADDRESS = "https://index.docker.io/v1/";

const HUB_ALIASES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST_RE = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::([0-9]{1,5}))?$`);

/** Why a credential's `registry` is not a bare host[:port], or undefined if it is. */
export function hostProblem(registry: string): string | undefined {
  if (registry.length === 0) return "must not be empty";
  if (/\s/.test(registry)) return "must not contain whitespace";
  if (registry.includes("://")) return "must be a host only, without a scheme (e.g. ghcr.io, not https://ghcr.io)";
  if (registry.includes("@")) return "must not contain credentials";
  if (registry.includes("/")) return "must be a host only, without a path";
  const m = HOST_RE.exec(registry);
  if (!m) return "is not a valid host name";
  if (m[1] !== undefined && (Number(m[1]) < 1 || Number(m[1]) > 65535)) return "has a port outside 1-65535";
  if (registry.length > 253) return "is longer than 253 characters";
  return undefined;
}

/** The registry's identity: lower-case, Docker Hub's aliases folded to `docker.io`. */
export function normalizeRegistry(host: string): string {
  const h = host.toLowerCase();
  return HUB_ALIASES.has(h) ? DOCKER_HUB : h;
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
