// The one error type of the agent: a SPEC §5 code, Docker's or AWS's own message,
// and an operator hint. Retryability comes from the code table alone.
import { ERROR_CODES, type ErrorCode } from "./codes.ts";

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  hint: string;
  retryable: boolean;
}

export class AgentError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "AgentError";
    this.code = code;
    this.hint = opts.hint ?? ERROR_CODES[code].hint;
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  toBody(): ErrorBody {
    return { code: this.code, message: this.message, hint: this.hint, retryable: this.retryable };
  }
}

/** Anything thrown becomes an AgentError; what is not already one is a bug. */
export function asAgentError(err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AgentError("internal", message, { cause: err });
}

/** The bake was stopped: `reason` is the abort signal's reason (which signal, or why the agent stops). */
export function interruptedError(reason: unknown): AgentError {
  const why = reason instanceof Error ? reason.message : typeof reason === "string" ? reason : "aborted";
  return new AgentError("interrupted", `the bake was interrupted before it finished (${why}); no manifest was written`, { cause: reason });
}
