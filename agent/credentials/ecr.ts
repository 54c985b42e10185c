// ECR credentials: a short-lived token from ecr:GetAuthorizationToken in the
// registry host's region for the host's registry id. No stored secret exists.
import { AgentError } from "../errors/agent-error.ts";
import type { Scrubber } from "../errors/scrub.ts";
import type { Credential } from "../spec/schema.ts";
import { awsFailure, malformedAnswer } from "./aws-error.ts";
import type { AwsPorts, RegistryAuth } from "./types.ts";

export async function fetchEcrCredential(
  cred: Credential,
  aws: Pick<AwsPorts, "getEcrToken" | "endpointOf">,
  scrubber: Scrubber,
  now: number,
  signal: AbortSignal,
): Promise<RegistryAuth> {
  const ecr = cred.ecr;
  if (!ecr) throw new AgentError("internal", `credential ${cred.id} is not an ECR credential`);
  const what = `ecr:GetAuthorizationToken for registry ${ecr.accountId} in ${ecr.region}`;
  const endpoint = () => aws.endpointOf({ service: "ecr", host: ecr });
  let token;
  try {
    token = await aws.getEcrToken(ecr, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    throw awsFailure(err, "ecr", what);
  }
  if (!token) throw await malformedAnswer(what, "without authorizationData", endpoint);
  if (!token.authorizationToken) throw await malformedAnswer(what, "without an authorizationToken", endpoint);
  scrubber.add(token.authorizationToken);
  const decoded = Buffer.from(token.authorizationToken, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw await malformedAnswer(what, "with a token that is not base64 of user:password", endpoint);
  const password = decoded.slice(colon + 1);
  scrubber.add(password);
  const expiresAt = token.expiresAt?.getTime();
  if (expiresAt !== undefined && expiresAt <= now) {
    throw new AgentError("registry_auth_failed", `ecr:GetAuthorizationToken returned a token that expired at ${new Date(expiresAt).toISOString()}`);
  }
  return {
    username: decoded.slice(0, colon),
    password,
    serverAddress: cred.registry.toLowerCase(),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  };
}
