// Token credentials: the secret is an SSM SecureString read with decryption
// through the instance role, under the configured prefix only (checked in the
// spec, and again here), and registered with the scrubber the moment it arrives.
import { AgentError } from "../errors/agent-error.ts";
import type { Scrubber } from "../errors/scrub.ts";
import type { Credential } from "../spec/schema.ts";
import { serverAddress } from "../spec/registry.ts";
import { awsFailure, malformedAnswer } from "./aws-error.ts";
import type { AwsPorts, RegistryAuth } from "./types.ts";

export async function fetchTokenCredential(
  cred: Credential,
  prefix: string,
  aws: Pick<AwsPorts, "getParameter" | "endpointOf">,
  scrubber: Scrubber,
  signal: AbortSignal,
): Promise<RegistryAuth> {
  const name = cred.parameterName ?? `${prefix}${cred.id}`;
  if (!name.startsWith(prefix)) {
    throw new AgentError("spec_invalid", `parameter ${name} is outside the configured prefix ${prefix}`);
  }
  const what = `ssm:GetParameter ${name}`;
  const endpoint = () => aws.endpointOf({ service: "ssm" });
  let param;
  try {
    param = await aws.getParameter(name, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    const failure = awsFailure(err, "ssm", what);
    if (failure.code === "secret_not_found") {
      throw new AgentError("secret_not_found", `${failure.message} (no parameter named ${name} in this account and region)`, { cause: err });
    }
    throw failure;
  }
  if (!param) throw await malformedAnswer(what, "without Parameter", endpoint);
  if (param.type === undefined) throw await malformedAnswer(what, "without Parameter.Type", endpoint);
  if (param.type !== "SecureString") {
    // Never register or show a value that was not stored as a secret, and never use it.
    throw new AgentError("secret_not_secure", `SSM parameter ${name} is a ${param.type}, not a SecureString; refusing to use it as a registry secret`);
  }
  if (param.value === undefined) throw await malformedAnswer(what, "without Parameter.Value", endpoint);
  scrubber.add(param.value);
  if (param.value.length === 0) throw new AgentError("secret_not_found", `SSM parameter ${name} is empty`);
  // Where the username is the secret itself (DigitalOcean), the spec's may be an older token.
  const username = cred.usernameIsSecret ? param.value : (cred.username ?? "");
  return { username, password: param.value, serverAddress: serverAddress(cred.registry) };
}
