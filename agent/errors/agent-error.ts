// The one error type of the agent: a docs/reference.md §5 code, Docker's or AWS's own message,
// and an operator hint. Retryability comes from the code table alone.
import { ERROR_CODES, type ErrorCode } from "./codes.ts";

export interface ErrorBody {
  code: ErrorCode;
  /** Docker's (or AWS's) words, verbatim but scrubbed. */
  message: string;
  hint: string;
  retryable: boolean;
  /** A registry's refusal: the registry's own words, from Docker's line or recovered through the Engine API (docs/reference.md §3). */
  registryMessage?: string;
  /** A pull's failure: how many times it was attempted (1 + pullRetries when a retryable error used the retries up). */
  attempts?: number;
}

export class AgentError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly registryMessage: string | undefined;
  /** Set by the one who retried the operation, once it gives up (docker/pull.ts). */
  attempts: number | undefined;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown; registryMessage?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "AgentError";
    this.code = code;
    this.hint = opts.hint ?? ERROR_CODES[code].hint;
    this.registryMessage = opts.registryMessage;
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  toBody(): ErrorBody {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      retryable: this.retryable,
      ...(this.registryMessage !== undefined ? { registryMessage: this.registryMessage } : {}),
      ...(this.attempts !== undefined ? { attempts: this.attempts } : {}),
    };
  }
}

/** Anything thrown becomes an AgentError; what is not already one is a bug. */
export function asAgentError(err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // The agent's own writes (the outbox, the manifest, its records) on a full disk: docs/reference.md §5's disk_full, not a bug.
  const code = (err as NodeJS.ErrnoException | undefined)?.code === "ENOSPC" ? "disk_full" : "internal";
  return new AgentError(code, message, { cause: err });
}

/** The bake was stopped: `reason` is the abort signal's reason (which signal, or why the agent stops). */
export function interruptedError(reason: unknown): AgentError {
  const why = reason instanceof Error ? reason.message : typeof reason === "string" ? reason : "aborted";
  return new AgentError("interrupted", `the bake was interrupted before it finished (${why}); no manifest was written`, { cause: reason });
}
