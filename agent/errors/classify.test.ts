import { describe, expect, it } from "vitest";
import { classifyAwsError, classifyDockerMessage } from "./classify.ts";

// Every error text listed in DOCKER-AND-AWS-FACTS.md, as dockerd relays it.
const DOCKER_TEXTS: [string, boolean, string][] = [
  ["unauthorized: incorrect username or password", true, "registry_auth_failed"],
  ["Error response from daemon: Get \"https://ghcr.io/v2/\": denied: denied", true, "registry_auth_failed"],
  ["denied: denied", true, "registry_auth_failed"],
  ["login attempt to http://ghcr.io/v2/ failed with status: 401 Unauthorized", true, "registry_auth_failed"],
  ["Get \"http://ghcr.io/v2/acme/api/manifests/1\": 401 Unauthorized", true, "registry_auth_failed"],
  [
    "pull access denied for acme/private, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
    false,
    "image_not_found",
  ],
  ["Head \"http://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/app/manifests/1\": no basic auth credentials", false, "image_not_found"],
  ["manifest for ghcr.io/acme/api:9.9 not found: manifest unknown: manifest unknown", true, "image_not_found"],
  ["repository ghcr.io/acme/apii not found: name unknown: repository name not known to registry", true, "image_not_found"],
  [
    "denied: User: arn:aws:sts::123456789012:assumed-role/slothbox-box/i-0abc is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/app because no identity-based policy allows the ecr:BatchGetImage action",
    true,
    "image_access_denied",
  ],
  ["denied: Your Authorization Token has expired. Please run 'aws ecr get-login-password' to fetch a new one.", true, "registry_auth_failed"],
  ["toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit", false, "registry_rate_limited"],
  ["failed to register layer: Error processing tar file(exit status 1): write /usr/lib/x: no space left on device", true, "disk_full"],
  ["Got permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock", false, "docker_unavailable"],
  ["Get \"https://ghcr.io/v2/\": dial tcp: lookup ghcr.io on 127.0.0.53:53: no such host", true, "registry_unreachable"],
  ["Get \"http://flaky.registry.test/v2/x/manifests/1\": received unexpected HTTP status: 503 Service Unavailable", false, "registry_unreachable"],
  ["Get \"https://quay.io/v2/\": x509: certificate signed by unknown authority", false, "registry_unreachable"],
  ["manifest digest sha256:aaa does not match expected sha256:bbb", true, "digest_mismatch"],
  ["denied: requested access to the resource is denied", true, "image_access_denied"],
  ["Get \"http://ghcr.io/v2/\": unauthorized: incorrect username or password", true, "registry_auth_failed"],
  ["Head \"https://registry-1.docker.io/v2/acme/private/manifests/1\": unauthorized: authentication required", false, "image_not_found"],
  ["denied: requested access to the resource is denied", false, "image_not_found"],
];

describe("classifyDockerMessage", () => {
  it.each(DOCKER_TEXTS)("%s → %s", (text, authenticated, code) => {
    expect(classifyDockerMessage(text, { authenticated })).toBe(code);
  });

  it("falls back to the daemon's status code, then to internal", () => {
    expect(classifyDockerMessage("something odd", { authenticated: false, statusCode: 404 })).toBe("image_not_found");
    expect(classifyDockerMessage("something odd", { authenticated: false })).toBe("internal");
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

  it("treats AWS server errors and unreachable endpoints as credentials unavailable (retryable)", () => {
    expect(classifyAwsError(err("InternalServerError", 500), "ssm")).toBe("aws_credentials_unavailable");
    expect(classifyAwsError(Object.assign(new Error("x"), { code: "ECONNREFUSED" }), "ecr")).toBe("aws_credentials_unavailable");
  });

  it("calls an unknown AWS error internal", () => {
    expect(classifyAwsError(err("ValidationException"), "ssm")).toBe("internal");
  });
});
