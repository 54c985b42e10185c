// docs/reference.md §5: the stable error codes, whether each is retryable, and the hint an
// operator reads. Hints follow the platform's own troubleshooting advice
// (shared/seeds/004: private registries). Retryability is read from here alone.

export const ERROR_CODES = {
  spec_invalid: {
    retryable: false,
    hint: "Fix the bake spec at the paths listed and run the bake again.",
  },
  credential_not_found: {
    retryable: false,
    hint: "The service names a registryCredentialId that the spec does not define; add the credential or fix the id.",
  },
  registry_mismatch: {
    retryable: false,
    hint: "A credential only works for its own registry host. Attach the credential for the registry the image lives on, or fix the image reference.",
  },
  secret_not_found: {
    retryable: false,
    hint: "The SSM parameter holding the secret does not exist in this account and region. Re-save the credential (which rewrites the parameter) or check the box's AWS region.",
  },
  secret_access_denied: {
    retryable: false,
    hint: "The box's instance role may not read this parameter: it needs ssm:GetParameter on the parameter and kms:Decrypt on its KMS key.",
  },
  secret_not_secure: {
    retryable: false,
    hint: "Registry secrets must be stored as SSM SecureString parameters. Re-save the credential so it is written as a SecureString.",
  },
  ecr_access_denied: {
    retryable: false,
    hint: "The box's instance role needs ecr:GetAuthorizationToken (resource \"*\"), plus ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the repository.",
  },
  aws_credentials_unavailable: {
    retryable: true,
    hint: "The agent could not obtain the instance role's credentials from the instance metadata service (IMDS: 169.254.169.254, or AWS_EC2_METADATA_SERVICE_ENDPOINT); the message names the endpoint. Check that the instance has an instance profile with a role and that IMDS is enabled and answers on the host (curl -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60'). The agent runs on the host, so an IMDSv2 hop limit of 1 is enough; from inside a container it must be 2.",
  },
  aws_throttled: {
    retryable: true,
    hint: "AWS throttled the request past the retry budget. Stagger bakes across the fleet or raise the account's SSM throughput setting, then rebake.",
  },
  aws_unreachable: {
    retryable: true,
    hint: "An AWS endpoint the agent calls itself did not answer; the message names it and the network error. Usual causes: a private subnet without a NAT gateway or VPC endpoints (interface endpoints com.amazonaws.<region>.ssm and com.amazonaws.<region>.ecr.api for the credential; com.amazonaws.<region>.ecr.dkr and the S3 gateway endpoint for the pulls themselves), a proxy the agent was not given (HTTPS_PROXY in its unit), or a typo in an AWS_ENDPOINT_URL_* variable. Test from the box with curl against the endpoint named above; see docs/troubleshooting.md.",
  },
  registry_auth_failed: {
    retryable: false,
    hint: "Authentication errors usually mean an expired or revoked token, a wrong username, or a registry host that doesn't match where the image actually lives. Update the credential (or create a new one) and rebake.",
  },
  image_not_found: {
    retryable: false,
    hint: "\"Not found\" is most often a typo in the image repository or tag — or a private image with no credential attached, since registries report unauthorized pulls of private images as not found.",
  },
  image_access_denied: {
    retryable: false,
    hint: "The registry accepted the credential but refuses this image: the credential's user (for ECR, the box's instance role) may not read the repository — or the repository does not exist, since registries answer both alike. Check the repository name, then grant read access (ECR: ecr:BatchGetImage and ecr:GetDownloadUrlForLayer for the role, in the registry host's account and region).",
  },
  registry_rate_limited: {
    retryable: true,
    hint: "The registry's pull rate limit was reached. Authenticate pulls with a credential (higher limits), use a mirror, or rebake later.",
  },
  registry_unreachable: {
    retryable: true,
    hint: "The registry could not be reached, answered with a server error (DNS, connection, TLS or 5xx), or answered a pull in words no rule knows (Docker's line in the output). Check the box's network path to the registry and the registry's status.",
  },
  pull_timeout: {
    retryable: true,
    hint: "The pull made no progress within the inactivity timeout, or exceeded the total pull timeout. Check the registry's health and the box's bandwidth; raise pullInactivityTimeoutSeconds or pullTimeoutSeconds for very large images.",
  },
  disk_full: {
    retryable: false,
    hint: "Docker's disk is full. Give the box a larger root or Docker volume, or remove unused images, and rebake. A bake stopped by the disk reserve (diskReserveBytes, diskReservePercent) kept that much free on purpose, so that the box keeps working.",
  },
  docker_unavailable: {
    retryable: true,
    hint: "The Docker daemon did not answer on its socket. Check that docker is running (systemctl status docker) and that the agent may use the socket (dockerSocket / DOCKER_HOST).",
  },
  digest_mismatch: {
    retryable: false,
    hint: "The pulled content does not match the pinned digest. The image may have been tampered with or mis-pushed; check the digest in the service's image reference.",
  },
  image_signature_invalid: {
    retryable: false,
    hint: "The service's signature policy requires a cosign signature of the image's digest by one of the policy's keys, and none verified; nothing was pulled. The message lists each signature found and why it was rejected. Sign that exact digest with the policy's key (cosign sign --key cosign.key <image>@<digest>; for a multi-platform image sign the index, or all with --recursive), or add the key that signed it to the policy. `slothbox-agent verify --spec FILE --service NAME` shows the same check without pulling.",
  },
  image_unsupported: {
    retryable: false,
    hint: "Docker fetched this image but cannot unpack one of its layers. Docker before 23.0 (Debian 12's docker.io is 20.10) cannot read zstd-compressed layers (application/vnd.oci.image.layer.v1.tar+zstd) and says \"invalid tar header\"; a layer pushed corrupt fails the same way on any engine. Rebuild the image with gzip layers (docker buildx build --output type=image,compression=gzip,force-compression=true,push=true), or upgrade Docker on the box to 23.0 or later.",
  },
  interrupted: {
    retryable: true,
    hint: "The bake was stopped before it finished (SIGINT/SIGTERM, or the agent died mid-bake); no manifest was written. Run the bake again.",
  },
  internal: {
    retryable: false,
    hint: "This is a bug in slothbox-agent. Report it with the agent's log.",
  },
} as const satisfies Record<string, { retryable: boolean; hint: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
