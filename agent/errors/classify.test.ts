import { describe, expect, it } from "vitest";
import type { ErrorCode } from "./codes.ts";
import { classifyAwsError, classifyDockerMessage, isPlatformMismatch, isUnpackFailure, isUnsupportedMediaType, registryWords } from "./classify.ts";
import ENGINE_TEXTS from "../../test/fixtures/engine-texts.json" with { type: "json" };

// What dockerd 20.10, 26.1 and 28.5 (classic and containerd image stores) really
// answered to each registry refusal of the test stack, whose registries answer in
// the real services' words (test/stack/refusals.ts): the pull's message, the
// login's where it failed, and what GET /distribution/<name>/json said with the
// same credential; and what they said of their own findings (content that does
// not match its digest, a full disk). Captured with `node test/bench/refusal-probe.ts`.
interface Answer {
  status: number;
  message: string;
}
interface Row {
  engine: string;
  case: string;
  pull: Answer;
  login?: Answer;
  distribution: Answer;
}
const ROWS = ENGINE_TEXTS as Row[];

/**
 * What an operator must be told, per refusal, on every engine. `own`: the engine's
 * own finding, not a registry's refusal — classified on Docker's line, and no
 * registry words to report.
 */
const EXPECTED: [RegExp, { pull?: ErrorCode; login?: ErrorCode; anonymous?: boolean; own?: boolean; words: RegExp }][] = [
  [/wrong secret$/, { login: "registry_auth_failed", words: /incorrect username or password|denied: denied|needed permissions|Specified credentials are invalid|^unauthorized$|aka\.ms\/acr|HTTP Basic: Access denied|Not Authorized|authentication required/ }],
  [/no credential$/, { pull: "image_not_found", anonymous: true, words: /requested access to the resource is denied|no basic auth credentials/ }],
  [/unknown tag$/, { pull: "image_not_found", words: /manifest unknown|Requested image not found|Failed to fetch|is not found/ }],
  // Google answers an image its caller may not read in words that also say "you may have invalid
  // credentials": the credential's words win (SPEC §5).
  [/^gcr not allowed$/, { pull: "registry_auth_failed", words: /may have invalid credentials/ }],
  [/not allowed$/, { pull: "image_access_denied", words: /denied|not authorized|needed permissions|access forbidden/ }],
  // A 401 to the pull after the login passed: an expired or revoked credential, not a permission.
  [
    /revoked after login$/,
    {
      pull: "registry_auth_failed",
      words: /personal access token is expired|cannot be authenticated with the token|invalid credentials|Could not find robot with username|^unauthorized$|authentication required|HTTP Basic: Access denied/,
    },
  ],
  [/rate limited$/, { pull: "registry_rate_limited", words: /toomanyrequests/ }],
  [/^ecr expired token$/, { pull: "registry_auth_failed", login: "registry_auth_failed", words: /Your authorization token has expired/ }],
  [/^load balancer 502$/, { pull: "registry_unreachable", anonymous: true, words: /502 Bad Gateway/ }],
  [/^tampered (manifest|layer)$/, { pull: "digest_mismatch", anonymous: true, own: true, words: /verification failed for digest sha256:|failed size validation|unexpected commit digest/ }],
  [/^disk full$/, { pull: "disk_full", anonymous: true, own: true, words: /no space left on device/ }],
];

function expectation(c: string) {
  const e = EXPECTED.find(([re]) => re.test(c));
  if (!e) throw new Error(`no expectation for ${c}`);
  return e[1];
}

/** The registry's words as the agent reports them: from Docker's line, or recovered through /distribution. */
const wordsOf = (line: string, recovered: string) => registryWords(line) ?? registryWords(recovered);

describe("classifyDockerMessage on what each engine really says", () => {
  it.each(ROWS.map((r) => [`${r.engine}: ${r.case}`, r] as const))("%s", (_name, r) => {
    const e = expectation(r.case);
    const authenticated = e.anonymous !== true;
    if (e.pull && e.own) {
      expect(classifyDockerMessage(r.pull.message, { authenticated, statusCode: r.pull.status })).toBe(e.pull);
      expect(r.pull.message).toMatch(e.words);
    } else if (e.pull) {
      // The code, from Docker's line and, where it lost them, the registry's recovered words.
      const words = wordsOf(r.pull.message, r.distribution.message);
      expect(words, `no registry words for ${r.pull.message}`).toBeDefined();
      expect(classifyDockerMessage(words!, { authenticated, statusCode: r.pull.status })).toBe(e.pull);
      expect(words).toMatch(e.words);
      // Never internal, even from Docker's line alone.
      expect(classifyDockerMessage(r.pull.message, { authenticated, statusCode: r.pull.status })).toBeDefined();
    }
    if (e.login && r.login) {
      const words = wordsOf(r.login.message, r.distribution.message);
      expect(words).toBeDefined();
      expect(classifyDockerMessage(words!, { authenticated: true, login: true })).toBe(e.login);
      expect(classifyDockerMessage(r.login.message, { authenticated: true, login: true })).toBe(e.login);
      expect(words).toMatch(e.words);
    }
  });

  it("finds the registry's words in a classic line, and knows when an engine dropped them", () => {
    expect(registryWords('Head "https://ghcr.io/v2/acme/api/manifests/1": denied: denied')).toBe("denied: denied");
    expect(registryWords("manifest for ghcr.io/acme/api:9 not found: manifest unknown: manifest unknown")).toBe("manifest unknown: manifest unknown");
    expect(registryWords("toomanyrequests: Rate exceeded")).toBe("toomanyrequests: Rate exceeded");
    for (const lost of [
      'failed to resolve reference "ghcr.io/a/b:1": unexpected status from HEAD request to https://ghcr.io/v2/a/b/manifests/1: 403 Forbidden',
      "error from registry: denied\ndenied",
      "login attempt to http://x/v2/ failed with status: 403 Forbidden",
      'failed to resolve reference "ghcr.io/a/b:9": ghcr.io/a/b:9: not found',
    ]) {
      expect(registryWords(lost)).toBeUndefined();
    }
  });
});

describe("classifyDockerMessage on texts of the facts sheet and peers", () => {
  it.each([
    ["denied: User: arn:aws:sts::123456789012:assumed-role/box/i-1 is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/app", true, false, "image_access_denied"],
    ["denied: Your Authorization Token has expired. Please run 'aws ecr get-login' to fetch a new one.", true, false, "registry_auth_failed"],
    ["toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit", false, false, "registry_rate_limited"],
    ["failed to register layer: Error processing tar file(exit status 1): write /usr/lib/x: no space left on device", true, false, "disk_full"],
    ["Got permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock", false, false, "docker_unavailable"],
    ['Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io on 127.0.0.53:53: no such host', true, false, "registry_unreachable"],
    ['Get "https://quay.io/v2/": x509: certificate signed by unknown authority', false, false, "registry_unreachable"],
    ["manifest verification failed for digest sha256:aaa", true, false, "digest_mismatch"],
    ["error parsing HTTP 408 response body: invalid character '<' looking for beginning of value: \"<html><body><h1>408 Request Time-out</h1>\"", true, false, "registry_unreachable"],
    ["something no registry ever said", true, false, undefined],
    ["denied", true, false, "image_access_denied"],
    ["denied", false, false, "image_not_found"],
    ["denied", true, true, "registry_auth_failed"],
    ['unknown: failed to resolve reference "x:1": unexpected status from HEAD request to http://x/v2/x/manifests/1: 403 Forbidden', true, false, "image_access_denied"],
    // 401 after a login that passed: not authenticated, whatever the engine kept of it.
    ['unknown: failed to resolve reference "x:1": unexpected status from HEAD request to http://x/v2/x/manifests/1: 401 Unauthorized', true, false, "registry_auth_failed"],
    ["unauthorized: authentication required", true, false, "registry_auth_failed"],
    ["unauthorized: authentication required", false, false, "image_not_found"],
    // docker/hub-feedback#1981: a Docker Hub account with 2FA, its password refused on the manifest.
    ["Error response from daemon: Get https://registry-1.docker.io/v2/koalaman/scbuilder/manifests/latest: unauthorized: please use personal access token to login", true, false, "registry_auth_failed"],
    // Google's answer to a pull of a private image that carried no credential (GoogleCloudPlatform/docker-credential-gcr#70:
    // docker run with sudo, whose configuration had none): the private-image code, not a bad credential.
    [
      'Head "https://gcr.io/v2/acme-project/app/manifests/1": unauthorized: You don\'t have the needed permissions to perform this operation, and you may have invalid credentials. To authenticate your request, follow the steps in: https://cloud.google.com/container-registry/docs/advanced-authentication',
      false,
      false,
      "image_not_found",
    ],
    // goharbor/harbor#18895: Harbor's 401 for a project the user may not pull; SPEC §5 allows either code for
    // 401 words that say "not authorized" for a repository, and the status decides.
    ["unauthorized: unauthorized to access repository: myrepo/myimage, action: pull: unauthorized to access repository: myrepo/myimage, action: pull", true, false, "registry_auth_failed"],
    // ogham-mcp/ogham-mcp#5: 28.5's containerd store, an anonymous pull of a private GHCR package.
    ["error from registry: unauthorized\nunauthorized", false, false, "image_not_found"],
  ] as const)("%s (authenticated %s, login %s) → %s", (text, authenticated, login, code) => {
    expect(classifyDockerMessage(text, { authenticated, login })).toBe(code);
  });
});

// What each engine said when it had fetched a layer and could not unpack it: 20.10 pulling a
// zstd layer (it reads it as a plain tar), and every engine pulling a layer whose bytes are no
// archive (captured by test/e2e/images.test.ts).
const UNPACK_FAILURES = [
  "failed to register layer: ApplyLayer exit status 1 stdout:  stderr: archive/tar: invalid tar header",
  "failed to extract layer sha256:c652a40922d9ccbef7ce621dbd9d36bb4c30329197d01f6acc16bec7de889543: mount callback failed on /var/lib/docker/containerd/daemon/tmpmounts/containerd-mount1158010024: archive/tar: invalid tar header: unknown",
  'failed to extract layer (application/vnd.docker.image.rootfs.diff.tar.gzip sha256:76338d4995da41c2e833221e73e1b6f66ac1bab2778abcfae133514df3509382) to overlayfs as "extract-695957378-HjXh sha256:6fdf715e3ebb9000b54d660b27d0c6b78e8fb9adffd1090acf92b9fea0bc23b4": mount callback failed on /var/lib/docker/containerd/daemon/tmpmounts/containerd-mount212205716: archive/tar: invalid tar header',
];

describe("isUnpackFailure", () => {
  it.each(UNPACK_FAILURES)("%s", (text) => {
    expect(isUnpackFailure(text)).toBe(true);
    // Not the registry's words: the engine's own, about content it already has.
    expect(registryWords(text)).toBeUndefined();
  });

  it("is not a registry's refusal, nor a full disk", () => {
    expect(isUnpackFailure("manifest for ghcr.io/acme/api:9 not found: manifest unknown: manifest unknown")).toBe(false);
    expect(isUnpackFailure("failed to register layer: Error processing tar file(exit status 1): write /usr/lib/x: no space left on device")).toBe(false);
  });
});

// What the classic store (20.10, 26.1, 28.5) said pulling a Helm chart (test/e2e/images.test.ts), and
// what docker/distribution's manifest registry says of a media type it does not know (manifests.go),
// quoted for schema 1 images in public issues.
const UNSUPPORTED_MEDIA_TYPES = [
  "unsupported media type application/vnd.cncf.helm.config.v1+json",
  "unsupported manifest media type and no default available: application/vnd.docker.distribution.manifest.v1+prettyjws",
];

describe("isUnsupportedMediaType", () => {
  it.each(UNSUPPORTED_MEDIA_TYPES)("%s", (text) => {
    expect(isUnsupportedMediaType(text)).toBe(true);
    expect(registryWords(text)).toBeUndefined();
  });

  it("is not a registry's refusal", () => {
    expect(isUnsupportedMediaType('Head "http://ghcr.io/v2/a/b/manifests/1": denied: denied')).toBe(false);
  });
});

// What each engine said pulling an image index with no linux/amd64 manifest on amd64: the
// classic store (20.10, 28.5), 26.1's and 28.5's containerd store (test/e2e/images.test.ts).
const PLATFORM_MISMATCHES = [
  "no matching manifest for linux/amd64 in the manifest list entries",
  "no match for platform in manifest: not found",
  "no matching manifest for linux/amd64 in the manifest list entries: no match for platform in manifest: not found",
];

describe("isPlatformMismatch", () => {
  it.each(PLATFORM_MISMATCHES)("%s", (text) => {
    expect(isPlatformMismatch(text)).toBe(true);
    expect(registryWords(text)).toBeUndefined();
  });

  it("is not an unknown tag", () => {
    expect(isPlatformMismatch("manifest for ghcr.io/acme/api:9 not found: manifest unknown: manifest unknown")).toBe(false);
    expect(isPlatformMismatch('failed to resolve reference "ghcr.io/a/b:9": ghcr.io/a/b:9: not found')).toBe(false);
  });
});

describe("classifyAwsError", () => {
  const err = (name: string, status = 400) => Object.assign(new Error("m"), { name, $metadata: { httpStatusCode: status } });
  it.each([
    ["ParameterNotFound", "ssm", "secret_not_found"],
    ["AccessDeniedException", "ssm", "secret_access_denied"],
    ["KMSAccessDeniedException", "ssm", "secret_access_denied"],
    ["AccessDeniedException", "ecr", "ecr_access_denied"],
    ["ThrottlingException", "ssm", "aws_throttled"],
    ["ThrottlingException", "ecr", "aws_throttled"],
    ["CredentialsProviderError", "ssm", "aws_credentials_unavailable"],
    ["ExpiredTokenException", "ecr", "aws_credentials_unavailable"],
    ["UnrecognizedClientException", "ssm", "aws_credentials_unavailable"],
  ] as const)("%s from %s → %s", (name, service, code) => {
    expect(classifyAwsError(err(name), service)).toBe(code);
  });

  it("calls an endpoint that does not answer as a service does aws_unreachable, never aws_throttled: DNS, connection, timeout, TLS, 5xx", () => {
    const sys = (code: string) => Object.assign(new Error(code), { code });
    expect(classifyAwsError(err("InternalServerError", 500), "ssm")).toBe("aws_unreachable");
    expect(classifyAwsError(err("ServiceUnavailable", 503), "ecr")).toBe("aws_unreachable");
    for (const code of ["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ERR_TLS_CERT_ALTNAME_INVALID", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "SELF_SIGNED_CERT_IN_CHAIN"]) {
      expect(classifyAwsError(sys(code), "ssm"), code).toBe("aws_unreachable");
    }
    expect(classifyAwsError(Object.assign(new Error("the request socket did not establish a connection"), { name: "TimeoutError" }), "ecr")).toBe("aws_unreachable");
    // A proxy that would not open the tunnel (refused the credentials, could not reach the endpoint): the endpoint was not reached.
    expect(classifyAwsError(sys("ERR_PROXY_TUNNEL"), "ssm")).toBe("aws_unreachable");
  });

  it("calls whatever stops the instance metadata service aws_credentials_unavailable", () => {
    expect(classifyAwsError(Object.assign(new Error("TimeoutError from instance metadata service"), { name: "ProviderError" }), "ssm")).toBe("aws_credentials_unavailable");
    expect(classifyAwsError(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), "imds")).toBe("aws_credentials_unavailable");
  });

  it("leaves an unknown AWS error unclassified", () => {
    expect(classifyAwsError(err("ValidationException"), "ssm")).toBeUndefined();
  });
});
