// `slothbox-agent check-credential` (docs/reference.md §3): resolve one credential and log in;
// pull nothing. Names the credential, registry, type and username, and the
// outcome — never the secret.
import { waitForDocker } from "../docker/wait.ts";
import { asAgentError } from "../errors/agent-error.ts";
import { foreignText as t } from "../errors/foreign-text.ts";
import { loginWithRetries } from "../docker/login.ts";
import { routeWords } from "../net/proxy.ts";
import type { Runtime } from "../runtime.ts";
import type { Io } from "../io.ts";
import { EXIT } from "./exit.ts";
import { specForCommand } from "./spec-file.ts";

export async function checkCredentialCommand(rt: Runtime, args: { spec: string; id: string }, io: Io, signal: AbortSignal): Promise<number> {
  const say = (line: string) => io.stdout(rt.scrubber.scrub(line));
  const spec = await specForCommand(args.spec, rt.config.ssmParameterPrefix, rt.scrubber, io);
  if (!spec) return EXIT.usage;
  const cred = spec.credentials.find((c) => c.id === args.id);
  if (!cred) {
    io.stderr(`error: credential_not_found: no credential with id "${t(args.id)}" in the spec (have: ${spec.credentials.map((c) => c.id).join(", ") || "none"})`);
    return EXIT.usage;
  }
  // The secret is fetched before anything is printed: a username may be the secret
  // itself (DigitalOcean), and the scrubber knows it only once it has been fetched.
  const header = () => {
    say(`credential ${t(cred.id)}${cred.label ? ` "${t(cred.label)}"` : ""}`);
    say(`  type:     ${cred.type}`);
    say(`  registry: ${t(cred.registry)}`);
    if (cred.type === "token") {
      say(`  username: ${t(cred.username ?? "")}`);
      say(`  secret:   SSM SecureString ${t(cred.parameterName ?? "")}`);
    } else say(`  token:    ecr:GetAuthorizationToken for registry ${cred.ecr?.accountId} in ${cred.ecr?.region}`);
  };
  // Where the credential comes from, before anything is asked: an operator can test that endpoint from the box
  // (curl) while the check waits, and sees it even if the check is stopped. Nothing here is secret.
  if (cred.type === "token" || cred.ecr) {
    const aws = rt.aws();
    const api = cred.type === "ecr" && cred.ecr ? "ecr:GetAuthorizationToken" : "ssm:GetParameter";
    const endpoint = await aws.endpointOf(cred.type === "ecr" && cred.ecr ? { service: "ecr", host: cred.ecr } : { service: "ssm" }).catch((err: unknown) => `unknown (${asAgentError(err).message})`);
    say(`credential ${t(cred.id)}: asking ${api} at ${t(endpoint)}, with the instance role's credentials from ${t(aws.imdsEndpoint)} (unless AWS_* variables give others)`);
    if (URL.canParse(endpoint)) say(`credential ${t(cred.id)}: ${t(endpoint)} is asked ${routeWords(rt.proxy.route(endpoint))}; the instance metadata service never through a proxy`);
  }
  say(`credential ${t(cred.id)}: the registry login and pulls are dockerd's: they follow dockerd's own proxy settings, not the agent's`);
  let printed = false;
  try {
    const { auth } = await rt.newResolver().resolve(cred, signal);
    header();
    printed = true;
    say(`  secret:   obtained${auth.expiresAt ? ` (expires ${new Date(auth.expiresAt).toISOString()})` : ""}`);
    await waitForDocker(rt.docker, rt.clock, signal, (m) => io.stderr(m));
    await loginWithRetries(auth, { docker: rt.docker, scrubber: rt.scrubber, clock: rt.clock, random: rt.random, retries: rt.config.pullRetries }, signal);
    say(`  login:    succeeded (${t(auth.serverAddress)})`);
    say(`credential ${t(cred.id)} is good`);
    return EXIT.ok;
  } catch (err) {
    if (signal.aborted) throw err;
    if (!printed) header();
    const e = asAgentError(err);
    const tried = e.attempts !== undefined && e.attempts > 1 ? `; ${e.attempts} attempts failed` : "";
    say(`  result:   FAILED ${e.code}${e.retryable ? ` (retryable${tried})` : tried ? ` (${tried.slice(2)})` : ""}`);
    say(`  reported: ${t(e.message)}`);
    if (e.registryMessage && !e.message.includes(e.registryMessage)) say(`  registry said: ${t(e.registryMessage)}`);
    say(`  hint:     ${t(e.hint)}`);
    return EXIT.failed;
  }
}
