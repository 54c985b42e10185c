// Classifies foreign errors into docs/reference.md §5 codes: AWS errors by their error name
// and HTTP status; Docker's by the words in them (the registry's, where Docker
// kept or the agent recovered them), then by the HTTP status a registry answered
// with, then by dockerd's own status. A registry's words about the credential
// win over its status; a 401 means "not authenticated" (RFC 7235) and a 403 "not
// allowed", whatever the engine made of them. The caller keeps the foreign message
// verbatim; this module only decides, and finds the registry's words in
// Docker's lines. The texts it knows are those dockerd 20.10, 26.1 and 28.5
// print on the classic and the containerd image stores (errors/classify.test.ts).
import type { ErrorCode } from "./codes.ts";

export interface DockerContext {
  /** Whether the request carried a credential: registries answer an anonymous pull of a private image as unauthorized or denied. */
  authenticated: boolean;
  /** The failure came from POST /auth: the credential itself was refused. Otherwise the login (if any) had succeeded. */
  login?: boolean;
  /** The HTTP status dockerd answered with, when the failure came before the stream. */
  statusCode?: number;
}

/**
 * How a registry refused, before the context (credential or not, login or pull) decides the code:
 * "credential", words that say the credential is bad; "auth", not authenticated (401's words);
 * "denied", authenticated but not allowed (403's).
 */
type Refusal = "credential" | "auth" | "denied" | "not-found";

/** Ordered rules: the first whose pattern matches wins. */
const RULES: readonly [RegExp, ErrorCode | Refusal][] = [
  [/no space left on device/i, "disk_full"],
  [/toomanyrequests|too many requests|rate limit|rate exceeded|quota exceeded/i, "registry_rate_limited"],
  [/cannot connect to the docker daemon|permission denied while trying to connect to the docker daemon/i, "docker_unavailable"],
  // ECR's IAM refusal names the action the role lacks.
  [/not authorized to perform: ecr:(BatchGetImage|GetDownloadUrlForLayer)/i, "denied"],
  // Words that say the credential itself is bad, whoever asked: ECR's expired token, Docker Hub's
  // wrong password and expired access token, Quay's refused login and robot, GitLab's Basic
  // refusal, GHCR's token it cannot authenticate, Google's "you may have invalid credentials"
  // (which also speaks of permissions: the credential's words win, docs/reference.md §5; Google says the
  // same to an anonymous pull of a private image).
  [
    /authorization token has expired|incorrect username or password|specified credentials are invalid|HTTP Basic: Access denied|login attempt to .* failed|your account must log in with a Personal Access Token|access token is expired|invalid credentials|could not find robot with username|cannot be authenticated with the token/i,
    "credential",
  ],
  // Content that does not match its digest, as the engine found it: the classic store's "manifest
  // (or filesystem layer) verification failed for digest", the containerd store's commit that failed
  // on the digest or, for content of another length, on the size.
  [/verification failed for digest|digest mismatch|does not match (the )?(expected|computed) digest|unexpected commit digest|failed size validation|failed to verify/i, "digest_mismatch"],
  // "pull access denied …" is dockerd's own sentence for a 401/403 on the manifest: the
  // repository does not exist, or this caller may not read it (registries answer both alike).
  [/pull access denied|no basic auth credentials|requested access to the resource is denied|may require 'docker login'/i, "denied"],
  [/manifest unknown|name unknown|requested image not found|not found|no such image|blob unknown|failed to fetch ".*"/i, "not-found"],
  // 401's words: the registry did not take the credential (or, anonymous, wants one).
  [/unauthorized|authentication required/i, "auth"],
  // 403's words: this caller may not read this image.
  [/not authorized|needed permissions|(^|[\s:])denied($|[\s:.])|access forbidden|permission .* denied/i, "denied"],
  [/no such host|connection refused|connection reset|i\/o timeout|tls:|x509:|server misbehaving|network is unreachable|dial tcp|timeout exceeded|unexpected eof|service unavailable|internal server error|bad gateway|gateway time-?out|received unexpected http status: 5/i, "registry_unreachable"],
];

/** A registry's HTTP status, where the engine kept only that: "…: 403 Forbidden" at the end of its line. */
function registryStatus(text: string): number | undefined {
  // A proxy's HTML answer: "error parsing HTTP 408 response body: …".
  const m = /:\s([1-5]\d\d)(?: [A-Za-z][A-Za-z -]*)?$/.exec(text.trim()) ?? /error parsing HTTP ([1-5]\d\d) response body/.exec(text);
  return m ? Number(m[1]) : undefined;
}

function fromStatus(status: number | undefined): ErrorCode | Refusal | undefined {
  if (status === undefined) return undefined;
  if (status === 401) return "auth";
  if (status === 403) return "denied";
  if (status === 404) return "not-found";
  if (status === 429) return "registry_rate_limited";
  if (status >= 500 || status === 408) return "registry_unreachable";
  return undefined;
}

/** The code a refusal gets in its context (docs/reference.md §5). */
function resolve(r: ErrorCode | Refusal, ctx: DockerContext): ErrorCode {
  if (r === "not-found") return "image_not_found";
  if (r !== "credential" && r !== "auth" && r !== "denied") return r;
  // Anonymous: registries answer a private image as unauthorized or denied.
  if (!ctx.authenticated) return "image_not_found";
  // The login was refused, or the pull was not authenticated (a credential that expired or
  // was revoked after the login passed): the credential is wrong. A pull refused in 403's
  // words after the login passed: this credential may not read this image.
  return r === "credential" || r === "auth" || ctx.login ? "registry_auth_failed" : "image_access_denied";
}

/** The code Docker's words (or the registry's) mean in `ctx`; undefined where no rule and no status knows them: the caller decides. */
export function classifyDockerMessage(message: string, ctx: DockerContext): ErrorCode | undefined {
  for (const [re, code] of RULES) if (re.test(message)) return resolve(code, ctx);
  const byStatus = fromStatus(registryStatus(message)) ?? (ctx.statusCode === 404 ? "not-found" : undefined);
  return byStatus ? resolve(byStatus, ctx) : undefined;
}

/**
 * The engine had fetched a layer and could not unpack it — the classic store's "failed to
 * register layer", the containerd store's "failed to extract layer": a compression it
 * cannot read (zstd before Docker 23) or bytes that are no archive. A full disk fails
 * there too, and is its own code.
 */
export function isUnpackFailure(text: string): boolean {
  return /failed to (register|extract) layer/i.test(text) && !/no space left on device/i.test(text);
}

/**
 * What the registry served is no image the engine can run: a config media type the classic
 * store does not know ("unsupported media type application/vnd.cncf.helm.config.v1+json", a
 * Helm chart), or a manifest media type it cannot read (docker/distribution's "unsupported
 * manifest media type and no default available: …", a schema 1 manifest).
 */
export function isUnsupportedMediaType(text: string): boolean {
  return /unsupported (manifest )?media type/i.test(text);
}

/**
 * The image the tag or digest names has no manifest for the engine's platform (an index
 * of other platforms only): the classic store's "no matching manifest for linux/amd64 in
 * the manifest list entries", the containerd store's "no match for platform in manifest".
 */
export function isPlatformMismatch(text: string): boolean {
  return /no matching manifest for \S+ in the manifest list entries|no match for platform in manifest/i.test(text);
}

/**
 * The registry's own words in one of Docker's lines, or undefined where the
 * engine dropped them, or where the line is the engine's own about an image the
 * registry served (isUnpackFailure, isPlatformMismatch, isUnsupportedMediaType). The classic store keeps them after its own prefix
 * (`Head "https://…/manifests/1": denied: denied`, `manifest for X not found:
 * manifest unknown: …`, `pull access denied for X, …: denied: …`); the containerd
 * store often keeps only an HTTP status (`unexpected status from HEAD request to
 * …: 403 Forbidden`, `failed to fetch oauth token: …: 401 Unauthorized`), the
 * message without its code (`error from registry: denied`), or says `not found`
 * in its own words.
 */
export function registryWords(line: string): string | undefined {
  const text = line.trim();
  if (isUnpackFailure(text) || isPlatformMismatch(text) || isUnsupportedMediaType(text)) return undefined;
  // 28.5's containerd store keeps a registry's message but drops its error code ("error from
  // registry: access forbidden" for "denied: access forbidden"): asked again, the words are whole.
  if (/unexpected status|failed to fetch (oauth|anonymous) token|login attempt to .* failed with status|failed to resolve reference|repository does not exist or may require authorization|^error from registry:/i.test(text)) {
    return undefined;
  }
  const words = text
    .replace(/^(?:Get|Head) "[^"]+": /, "")
    .replace(/^manifest for \S+ not found: /, "")
    .replace(/^repository \S+ not found: /, "")
    .replace(/^pull access denied for \S+, repository does not exist or may require 'docker login'(?:: )?/, "")
    .trim();
  return words.length > 0 ? words : undefined;
}

/** Connection-level failures talking to the Docker socket itself. */
export function isDockerSocketError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ECONNREFUSED" || code === "EACCES" || code === "ECONNRESET" || code === "EPIPE";
}

export type AwsService = "ssm" | "ecr" | "imds";

const THROTTLING = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "SlowDown",
  "ProvisionedThroughputExceededException",
  "PriorRequestNotComplete",
  "BandwidthLimitExceeded",
  "EC2ThrottledException",
]);

const CREDENTIALS = new Set([
  "CredentialsProviderError",
  "ProviderError",
  "TokenProviderError",
  "ExpiredTokenException",
  "ExpiredToken",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "IncompleteSignatureException",
  "MissingAuthenticationTokenException",
]);

const NETWORK_CODES = new Set([
  // Node's: the proxy did not open the tunnel to the endpoint (refused the credentials, could not reach it).
  "ERR_PROXY_TUNNEL",
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "EPROTO",
]);

/** Node's codes for a TLS handshake that failed: a certificate it does not trust or that names another host, a protocol error. */
export const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$)/;

/** What the SDK's and Node's errors carry that tells a network failure apart. */
export interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** An AWS endpoint that did not answer as a service does: no name, no connection, a timeout, TLS, or a 5xx (docs/reference.md §5 aws_unreachable). */
function isAwsNetworkFailure(err: unknown): boolean {
  const e = (err ?? {}) as AwsLikeError;
  const status = e.$metadata?.httpStatusCode;
  const code = e.code ?? "";
  return (
    (status !== undefined && status >= 500) ||
    NETWORK_CODES.has(code) ||
    TLS_CODE.test(code) ||
    e.name === "TimeoutError" ||
    e.name === "RequestTimeout" ||
    e.name === "RequestTimeoutException"
  );
}

/** The code an AWS call's failure means; undefined where neither its name nor its status is known: the caller decides. */
export function classifyAwsError(err: unknown, service: AwsService): ErrorCode | undefined {
  const e = (err ?? {}) as AwsLikeError;
  const name = e.name ?? "";
  const status = e.$metadata?.httpStatusCode;
  if (THROTTLING.has(name) || status === 429) return "aws_throttled";
  if (CREDENTIALS.has(name)) return "aws_credentials_unavailable";
  if (service === "ssm") {
    if (name === "ParameterNotFound" || name === "ParameterVersionNotFound") return "secret_not_found";
    if (name === "AccessDeniedException" || name === "AccessDenied" || name.startsWith("KMS") || name === "InvalidKeyId") {
      return "secret_access_denied";
    }
  }
  if (service === "ecr" && (name === "AccessDeniedException" || name === "AccessDenied")) return "ecr_access_denied";
  // The instance metadata service is where the role's credentials come from: whatever stops it, they are unavailable.
  if (service === "imds") return "aws_credentials_unavailable";
  if (isAwsNetworkFailure(err)) return "aws_unreachable";
  return undefined;
}
