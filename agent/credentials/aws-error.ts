// Turns an AWS call's failure into an AgentError, keeping AWS's (or Node's) own
// words and naming the endpoint that failed: an operator behind a private subnet
// must see `getaddrinfo ENOTFOUND ssm.us-east-1.amazonaws.com`, not a code alone.
import { AgentError } from "../errors/agent-error.ts";
import { classifyAwsError, TLS_CODE, type AwsLikeError, type AwsService } from "../errors/classify.ts";
import { foreignText } from "../errors/foreign-text.ts";
import { AwsCallError } from "./types.ts";

/** What went wrong on the wire, in the words an operator searches for. */
export function networkWords(err: unknown): string {
  const e = (err ?? {}) as AwsLikeError;
  const message = e.message ?? "";
  if (e.name === "TimeoutError") {
    // The SDK's NodeHttpHandler says which bound it hit; say it without its module prefix.
    const ms = /(\d+) ms/.exec(message)?.[1];
    const within = ms ? ` within ${Number(ms) / 1000} s` : "";
    if (/establish a connection/.test(message)) return `connect timeout: no connection${within}`;
    return `timeout: no answer${within}`;
  }
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return `HTTP ${status}${e.name && e.name !== "Error" ? ` ${e.name}` : ""}${message && message !== e.name ? `: ${message}` : ""}`;
  if (e.code && TLS_CODE.test(e.code)) return `TLS: ${message} (${e.code})`;
  if (e.code && !message.includes(e.code)) return `${message} (${e.code})`;
  return message || e.name || "unknown error";
}

function sdkWords(e: AwsLikeError): string {
  const name = e?.name ?? "Error";
  return e?.message && e.message !== name && e.message !== "UnknownError" ? `${name}: ${e.message}` : name;
}

/** The SDK's credential chain failed: nothing was sent to the service; the endpoint that failed is where the role's credentials come from. */
export function isProviderError(err: unknown): boolean {
  return /^(CredentialsProviderError|ProviderError|TokenProviderError)$/.test((err as AwsLikeError | undefined)?.name ?? "");
}

export function awsFailure(err: unknown, service: AwsService, what: string): AgentError {
  if (err instanceof AgentError) return err;
  const call = err instanceof AwsCallError ? err : undefined;
  const cause = call ? call.cause : err;
  // An error no rule knows: docs/reference.md §5's anything else, AWS's words kept.
  const code = classifyAwsError(cause, service) ?? "internal";
  let text: string;
  if (code === "aws_unreachable") {
    const where = call?.endpoint ?? "the endpoint";
    const status = (cause as AwsLikeError | undefined)?.$metadata?.httpStatusCode;
    text = `${where} ${status !== undefined ? "answered" : "did not answer"}: ${networkWords(cause)}`;
  }
  else if (call && isProviderError(cause)) text = `no credentials for the instance role from ${call.endpoint}: ${sdkWords(cause as AwsLikeError)}`;
  else text = sdkWords(cause as AwsLikeError);
  const failure = new AgentError(code, `${what}: ${foreignText(text)}`, { cause });
  if (call) failure.attempts = call.attempts;
  return failure;
}

/**
 * AWS answered, but without what the call always returns (ECR's authorizationData and its
 * token, base64 of user:password; SSM's Parameter and its Type and Value): an endpoint that does not answer as the service does,
 * docs/reference.md §5's aws_unreachable, as a 5xx is. Not the agent's bug, and not an
 * empty value to be read on as if AWS had sent it.
 */
export async function malformedAnswer(what: string, how: string, endpoint: () => Promise<string>): Promise<AgentError> {
  const where = await endpoint().catch(() => "AWS");
  return new AgentError("aws_unreachable", `${what}: ${where} answered ${how}`);
}
