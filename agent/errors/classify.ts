// Classifies foreign errors into SPEC §5 codes: AWS errors by their error name
// and HTTP status, Docker's by the daemon's HTTP status and then by the texts
// real registries send (DOCKER-AND-AWS-FACTS.md), most specific first.
// The caller keeps the foreign message verbatim; this module only decides.
import type { ErrorCode } from "./codes.ts";

export interface DockerContext {
  /** Whether the pull carried credentials: an anonymous "denied" means a private image. */
  authenticated: boolean;
  /** HTTP status dockerd answered with, when the failure came before the stream. */
  statusCode?: number;
}

/** Ordered rules: the first whose pattern matches wins. */
const DOCKER_RULES: readonly [RegExp, ErrorCode][] = [
  [/no space left on device/i, "disk_full"],
  [/toomanyrequests|too many requests|rate limit/i, "registry_rate_limited"],
  [/cannot connect to the docker daemon|permission denied while trying to connect to the docker daemon/i, "docker_unavailable"],
  [/not authorized to perform: ecr:(BatchGetImage|GetDownloadUrlForLayer)/i, "image_access_denied"],
  [/authorization token has expired|incorrect username or password|unauthorized: authentication required|401 unauthorized|unauthorized: access to the requested resource is not authorized|(^|: )denied: denied$|login attempt to .* failed/i, "registry_auth_failed"],
  [/manifest digest .* does not match|digest mismatch|does not match (the )?(expected|computed) digest|filesystem layer verification failed|failed to verify/i, "digest_mismatch"],
  [/no basic auth credentials|pull access denied|may require 'docker login'|manifest unknown|name unknown|not found: manifest unknown|repository .* not found|manifest for .* not found|no such image|blob unknown/i, "image_not_found"],
  [/requested access to the resource is denied|(^|: )denied:/i, "image_access_denied"],
  [/no such host|connection refused|connection reset|i\/o timeout|tls:|x509:|server misbehaving|network is unreachable|dial tcp|timeout exceeded|unexpected eof|\b50[0-9]\b|service unavailable|internal server error|bad gateway|gateway time-?out|received unexpected http status: 5/i, "registry_unreachable"],
];

export function classifyDockerMessage(message: string, ctx: DockerContext): ErrorCode {
  for (const [re, code] of DOCKER_RULES) {
    if (!re.test(message)) continue;
    // Registries answer an anonymous pull of a private image as unauthorized or denied (SPEC §5).
    if (!ctx.authenticated && (code === "registry_auth_failed" || code === "image_access_denied")) return "image_not_found";
    return code;
  }
  if (ctx.statusCode === 404) return "image_not_found";
  if (ctx.statusCode === 401) return "registry_auth_failed";
  return "internal";
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

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE"]);

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export function classifyAwsError(err: unknown, service: AwsService): ErrorCode {
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
  if (service === "imds") return "aws_credentials_unavailable";
  // Server errors and an unreachable endpoint mean the credential cannot be obtained right now.
  if ((status !== undefined && status >= 500) || NETWORK_CODES.has(e.code ?? "") || name === "TimeoutError" || name === "RequestTimeout") {
    return "aws_credentials_unavailable";
  }
  return "internal";
}
