// Turns an AWS SDK failure into an AgentError, keeping AWS's own message.
import { AgentError } from "../errors/agent-error.ts";
import { classifyAwsError, type AwsService } from "../errors/classify.ts";
import { foreignText } from "../errors/foreign-text.ts";

export function awsFailure(err: unknown, service: AwsService, what: string): AgentError {
  if (err instanceof AgentError) return err;
  const e = err as { name?: string; message?: string };
  const name = e?.name ?? "Error";
  const text = foreignText(e?.message && e.message !== name && e.message !== "UnknownError" ? `${name}: ${e.message}` : name);
  return new AgentError(classifyAwsError(err, service), `${what}: ${text}`, { cause: err });
}
