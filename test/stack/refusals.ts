// What each registry of the stack answers when it refuses, in the real
// service's words: status codes and bodies taken from the services' public
// documentation, their open-source code, or public issue threads where users
// quoted them (each cited). The token server (token-server.ts) uses the
// token-endpoint answers; the registry fronts (registry-front.ts) the registry's.
// Where no source was found, the reference registry's own answer (distribution's
// registry/api/errcode/register.go) stands, and the entry says so.

/** An HTTP answer a refusing registry sends. */
export interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

const errors = (status: number, ...errs: { code: string; message: string; detail?: unknown }[]): Answer => ({
  status,
  body: JSON.stringify({ errors: errs }),
  headers: { "content-type": "application/json; charset=utf-8" },
});

export type RegistryKind = "dockerhub" | "ghcr" | "ecr" | "gcr" | "pkgdev" | "quay" | "digitalocean" | "acr" | "gitlab";

export interface TokenRefusals {
  /** A wrong or revoked secret at the token endpoint. */
  badCredentials: Answer;
  /** A valid identity asking for a repository it may not pull; undefined: a token with reduced scope is issued (the token spec's rule). */
  denied?: (repo: string) => Answer;
  /**
   * A credential the service stopped accepting after the login passed (expired, revoked, its
   * robot's token regenerated), answered to the pull's token request: always 401, the status of
   * "not authenticated" (RFC 7235), whatever the words say besides.
   */
  revoked: Answer;
}

export interface RegistryRefusals {
  /**
   * A manifest or blob request whose token does not grant the repository (anonymous, or
   * reduced scope); undefined: distribution's own 401 (`UNAUTHORIZED`, `authentication required`).
   */
  unauthorized?: (repo: string, authenticated: boolean) => Answer;
  /** HTTP 429 on the manifest. */
  rateLimited: Answer;
  /** An unknown tag; undefined: distribution's own (`MANIFEST_UNKNOWN`, `manifest unknown`). */
  manifestUnknown?: (repo: string, reference: string) => Answer;
}

// Google's token service for a credential it does not accept, and for one that may not read the
// repository alike (kubernetes-sigs/promo-tools#632; GoogleCloudPlatform/docker-credential-gcr#70).
const GOOGLE_UNAUTHORIZED = errors(401, {
  code: "UNAUTHORIZED",
  message:
    "You don't have the needed permissions to perform this operation, and you may have invalid credentials. To authenticate your request, follow the steps in: https://cloud.google.com/container-registry/docs/advanced-authentication",
});

// GitLab's jwt/auth for a password or token it does not accept (below).
const GITLAB_BASIC_DENIED = errors(401, {
  code: "UNAUTHORIZED",
  message:
    "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect or you're required to use a token instead of a password. If a token was provided, it was either incorrect, expired, or improperly scoped. See https://gitlab.com/help/user/profile/account/two_factor_authentication_troubleshooting.md#error-http-basic-access-denied-if-a-password-was-provided-for-git-authentication-",
});

// distribution/distribution registry/api/errcode/register.go: the reference registry's defaults.
const SPEC_TOO_MANY = errors(429, { code: "TOOMANYREQUESTS", message: "too many requests" });

export const TOKEN_REFUSALS: Record<Exclude<RegistryKind, "ecr">, TokenRefusals> = {
  // Docker Hub's token endpoint: 401 with `{"details": …}` (google/go-containerregistry
  // pkg/v1/remote/transport/error_test.go); docker renders "unauthorized: incorrect username
  // or password" (docker/hub-feedback#1098). A denied repository gets a token with reduced
  // scope, and the registry refuses (distribution docs/content/spec/auth/token.md).
  // A personal access token past its expiry date, refused when the pull asks for its token:
  // docker renders it on the manifest request, `Head "https://registry-1.docker.io/v2/library/redis/
  // manifests/alpine": unauthorized: personal access token is expired` (sailor-sh/CK-X#60), in the
  // token endpoint's `details` form above.
  dockerhub: {
    badCredentials: { status: 401, body: JSON.stringify({ details: "incorrect username or password" }), headers: { "content-type": "application/json" } },
    revoked: { status: 401, body: JSON.stringify({ details: "personal access token is expired" }), headers: { "content-type": "application/json" } },
  },
  // GHCR answers an expired or wrong PAT at ghcr.io/token with 403 DENIED "denied"
  // (sigstore/scaffolding#127 "GET https://ghcr.io/token?…: DENIED: denied"; akuity/kargo#778
  // "403 Forbidden"); a package the caller may not read: 403 DENIED "requested access to the
  // resource is denied" (Bossett/bsky-feeds#155, seen for an anonymous caller; the same answer is
  // assumed for an authenticated one, none was found quoted).
  // A token GHCR no longer accepts, rendered by docker as "unauthorized: unauthenticated: User cannot
  // be authenticated with the token provided." (autc04/Retro68#274, an expired GHCR token).
  ghcr: {
    badCredentials: errors(403, { code: "DENIED", message: "denied" }),
    revoked: errors(401, { code: "UNAUTHORIZED", message: "unauthenticated: User cannot be authenticated with the token provided." }),
    denied: () => errors(403, { code: "DENIED", message: "requested access to the resource is denied" }),
  },
  // GCR's token endpoint: UNAUTHORIZED "You don't have the needed permissions …"
  // (kubernetes-sigs/promo-tools#632; docker renders it in GoogleCloudPlatform/docker-credential-gcr#70)
  // for invalid credentials and for missing permissions alike.
  gcr: { badCredentials: GOOGLE_UNAUTHORIZED, denied: () => GOOGLE_UNAUTHORIZED, revoked: GOOGLE_UNAUTHORIZED },
  // Artifact Registry refuses a repository at its /v2/token endpoint with DENIED "Permission
  // \"artifactregistry.repositories.downloadArtifacts\" denied on resource … (or it may not exist)"
  // (GoogleContainerTools/skaffold#6743; rendered by docker in
  // terraform-google-modules/terraform-google-kubernetes-engine#1779). Invalid credentials: no
  // Artifact Registry quote was found; Google's token service answers as GCR's does (above).
  pkgdev: {
    badCredentials: GOOGLE_UNAUTHORIZED,
    revoked: GOOGLE_UNAUTHORIZED,
    denied: (repo) => {
      const [project = "", ...rest] = repo.split("/");
      return errors(403, {
        code: "DENIED",
        message: `Permission "artifactregistry.repositories.downloadArtifacts" denied on resource "projects/${project}/locations/europe-west1/repositories/${rest[0] ?? ""}" (or it may not exist)`,
      });
    },
  },
  // Quay's /v2/auth: InvalidLogin → UNAUTHORIZED, "Specified credentials are invalid", detail {}, 401
  // (quay/quay endpoints/v2/v2auth.py and errors.py); a denied repository is not an error there:
  // the token has reduced scope and the registry refuses (below). A robot whose token was
  // regenerated: /v2/auth raises InvalidLogin(auth_result.error_message) (endpoints/v2/v2auth.py)
  // with verify_robot's "Could not find robot with username: %s and supplied password."
  // (data/model/user.py), rendered by docker as "unauthorized: Could not find robot with username:
  // … and supplied password." (OpenShift pull failures quoted in public runbooks).
  quay: {
    badCredentials: errors(401, { code: "UNAUTHORIZED", message: "Specified credentials are invalid", detail: {} }),
    revoked: errors(401, { code: "UNAUTHORIZED", message: "Could not find robot with username: acme+deployer and supplied password.", detail: {} }),
  },
  // DigitalOcean: docker renders an invalid API token as "unauthorized: authentication required"
  // (primoscope/Spotify-echo SERVER_TESTING_REPORT.md). Nothing was found for denied repositories.
  digitalocean: { badCredentials: errors(401, { code: "UNAUTHORIZED", message: "authentication required" }), revoked: errors(401, { code: "UNAUTHORIZED", message: "authentication required" }) },
  // ACR: "unauthorized: authentication required, visit https://aka.ms/acr/authorization for more
  // information." (Microsoft's troubleshooting doc, learn.microsoft.com …/authentication-required;
  // dotnet/tye#1185).
  acr: {
    badCredentials: errors(401, { code: "UNAUTHORIZED", message: "authentication required, visit https://aka.ms/acr/authorization for more information." }),
    revoked: errors(401, { code: "UNAUTHORIZED", message: "authentication required, visit https://aka.ms/acr/authorization for more information." }),
  },
  // GitLab's jwt/auth: the "HTTP Basic: Access denied …" sentence of its docs
  // (gitlabhq doc/user/profile/account/two_factor_authentication_troubleshooting.md), rendered by
  // docker as "unauthorized: HTTP Basic: Access denied. …" (basecamp/kamal#1498); no access:
  // error('DENIED', status: 403, message: 'access forbidden')
  // (gitlabhq app/services/auth/container_registry_authentication_service.rb). A deploy token
  // revoked or expired after the login: the same sentence ("either incorrect, expired, or improperly scoped").
  gitlab: {
    badCredentials: GITLAB_BASIC_DENIED,
    revoked: GITLAB_BASIC_DENIED,
    denied: () => errors(403, { code: "DENIED", message: "access forbidden" }),
  },
};

export const REGISTRY_REFUSALS: Record<RegistryKind, RegistryRefusals> = {
  dockerhub: {
    // After the token exchange dockerd logs a two-error body, DENIED then UNAUTHORIZED
    // (mynodebtc/mynode#847: "errors:\ndenied: requested access to the resource is denied\nunauthorized:
    // authentication required"); docker renders it "pull access denied for X, repository does not
    // exist or may require 'docker login': denied: requested access to the resource is denied"
    // (docker/for-win#9562).
    unauthorized: () =>
      errors(401, { code: "DENIED", message: "requested access to the resource is denied" }, { code: "UNAUTHORIZED", message: "authentication required" }),
    // docs.docker.com (docker/docs commit 01a20e4): "Docker Hub will return a 429 response code
    // with the following body when the manifest is requested"; today's wording for an anonymous
    // caller: docker/hub-feedback#2464.
    rateLimited: errors(429, { code: "TOOMANYREQUESTS", message: "You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit" }),
  },
  ghcr: {
    // An anonymous GET of a private package's manifest: `{"errors":[{"code":"UNAUTHORIZED",
    // "message":"authentication required"}]}`, no detail (strausmann/mcp-dockhand#3).
    unauthorized: () => errors(401, { code: "UNAUTHORIZED", message: "authentication required" }),
    // dependabot/cli#380: "toomanyrequests: retry-after: 880.092µs, allowed: 44000/minute".
    rateLimited: errors(429, { code: "TOOMANYREQUESTS", message: "retry-after: 880.092µs, allowed: 44000/minute" }),
  },
  ecr: {
    // ECR answers its own rate limit "TOOMANYREQUESTS: Rate exceeded" (awsdocs/amazon-ecr-user-guide
    // doc_source/common-errors.md).
    rateLimited: errors(429, { code: "TOOMANYREQUESTS", message: "Rate exceeded" }),
    // ECR Public's words for an unknown tag (practo/k8s-worker-pod-autoscaler#146); no quote of the
    // private registry's was found, and the service is the same.
    manifestUnknown: () => errors(404, { code: "MANIFEST_UNKNOWN", message: "Requested image not found" }),
  },
  gcr: {
    // gcr.io is served by Artifact Registry today (gcr.io repositories): its quota answer (below).
    rateLimited: errors(429, {
      code: "TOOMANYREQUESTS",
      message: "Quota exceeded for quota metric 'Requests per project per user' and limit 'Requests per project per user per minute per user' of service 'artifactregistry.googleapis.com' for consumer 'project_number:388270116193'.",
    }),
    // stefanprodan/dockprom#242: "manifest unknown: Failed to fetch \"v0.41.0\" from request \"/v2/cadvisor/cadvisor/manifests/v0.41.0\"."
    manifestUnknown: (repo, reference) => errors(404, { code: "MANIFEST_UNKNOWN", message: `Failed to fetch "${reference}" from request "/v2/${repo}/manifests/${reference}".` }),
  },
  pkgdev: {
    // kubernetes/k8s.io#6431 (asia-south1-docker.pkg.dev).
    rateLimited: errors(429, {
      code: "TOOMANYREQUESTS",
      message: "Quota exceeded for quota metric 'Requests per project per user' and limit 'Requests per project per user per minute per user' of service 'artifactregistry.googleapis.com' for consumer 'project_number:388270116193'.",
    }),
    // firezone/firezone#10484: "manifest unknown: Failed to fetch \"1\"."
    manifestUnknown: (_repo, reference) => errors(404, { code: "MANIFEST_UNKNOWN", message: `Failed to fetch "${reference}".` }),
  },
  quay: {
    // Private, forbidden and unknown repositories alike: raise Unauthorized → "UNAUTHORIZED",
    // "access to the requested resource is not authorized", detail {}, 401 (quay/quay
    // endpoints/v2/__init__.py require_repo_read; errors.py), with a scoped Bearer challenge.
    unauthorized: () => errors(401, { code: "UNAUTHORIZED", message: "access to the requested resource is not authorized", detail: {} }),
    rateLimited: SPEC_TOO_MANY,
    // quay/quay endpoints/v2/errors.py ManifestUnknown.
    manifestUnknown: () => errors(404, { code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: {} }),
  },
  digitalocean: { rateLimited: SPEC_TOO_MANY },
  acr: {
    // Not authenticated, not authorised and unknown alike (Azure/acr#359; Microsoft's doc above).
    unauthorized: () => errors(401, { code: "UNAUTHORIZED", message: "authentication required, visit https://aka.ms/acr/authorization for more information." }),
    rateLimited: SPEC_TOO_MANY,
    // MicrosoftDocs/azure-docs#90060 (MCR, which runs on ACR): MANIFEST_UNKNOWN, detail {"Tag": …}.
    manifestUnknown: (_repo, reference) => errors(404, { code: "MANIFEST_UNKNOWN", message: `manifest tagged by "${reference}" is not found`, detail: { Tag: reference } }),
  },
  gitlab: { rateLimited: SPEC_TOO_MANY },
};

// ECR: basic auth with the GetAuthorizationToken password, and IAM behind it.
export const ECR = {
  /** A missing or unknown credential: plain text "Not Authorized\n" (mdlavin/copy-docker-image#5; keel-hq/keel#211) with ECR's Basic challenge (renovatebot/renovate lib/modules/datasource/docker/common.ts). */
  notAuthorized: (host: string): Answer => ({
    status: 401,
    body: "Not Authorized\n",
    headers: { "content-type": "text/plain; charset=utf-8", "www-authenticate": `Basic realm="https://${host}/",service="ecr.amazonaws.com"` },
  }),
  /**
   * A token ECR issued that has since expired: 403 (awsdocs/amazon-ecr-user-guide
   * doc_source/common-errors-docker.md "HTTP 403"; awslabs/soci-snapshotter@6dcfca7), rendered
   * "denied: Your authorization token has expired. Reauthenticate and try again." (aws/aws-cli#7977).
   */
  expired: errors(403, { code: "DENIED", message: "Your authorization token has expired. Reauthenticate and try again." }),
  /** The instance role may not pull (aws/copilot-cli#3518; everything2/everything2#2562). */
  roleDenied: (accountId: string, region: string, repo: string): Answer =>
    errors(403, {
      code: "DENIED",
      message: `User: arn:aws:sts::${accountId}:assumed-role/slothbox-box/i-0123456789abcdef0 is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:${region}:${accountId}:repository/${repo} because no identity-based policy allows the ecr:BatchGetImage action`,
    }),
};

/** A load balancer in front of a registry, failing: nginx's 502 page (deis/deis#1422). */
export const BAD_GATEWAY: Answer = {
  status: 502,
  body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
  headers: { "content-type": "text/html" },
};
