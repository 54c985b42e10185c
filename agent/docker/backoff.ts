// The retries of a pull and of a login: exponential backoff with jitter, each
// wait drawn as random in [1, 2) × min × 2^(retry − 1), at most max (the
// schedule p-retry's `randomize` drew, which this replaced), waited on the clock port and
// drawn from the Random port so that unit tests drive both.
import type { Clock, Random } from "../clock.ts";
import { AgentError } from "../errors/agent-error.ts";

export interface Backoff {
  clock: Clock;
  random: Random;
  /** Retries after the first attempt. */
  retries: number;
  minMs: number;
  maxMs: number;
}

/**
 * The schedule of a registry's content: a pull, and the signature lookups before it.
 * First retry after ~1 s, doubling to at most 20 s: a registry blip passes, a bake is not held for long.
 */
export const REGISTRY_BACKOFF = { minMs: 1000, maxMs: 20_000 };

/** The wait before retry number `retry` (1 for the first). */
export function backoffMs(retry: number, b: Pick<Backoff, "random" | "minMs" | "maxMs">): number {
  return Math.min(Math.round((b.random() + 1) * b.minMs * 2 ** (retry - 1)), b.maxMs);
}

/**
 * Runs `once` until it succeeds, fails with an AgentError that is not retryable,
 * or the retries are used up. An abort ends it with the signal's reason, at once (during a wait too).
 */
export async function withBackoff<T>(
  once: () => Promise<T>,
  b: Backoff,
  signal: AbortSignal,
  onRetry?: (err: AgentError, attempt: number, retriesLeft: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    signal.throwIfAborted();
    try {
      const result = await once();
      signal.throwIfAborted();
      return result;
    } catch (err) {
      signal.throwIfAborted();
      const retriesLeft = b.retries - (attempt - 1);
      if (!(err instanceof AgentError) || !err.retryable || retriesLeft <= 0) throw err;
      onRetry?.(err, attempt, retriesLeft);
      await b.clock.sleep(backoffMs(attempt, b), signal);
    }
  }
}

/**
 * withBackoff whose failure says how many attempts were made (docs/reference.md §5
 * `attempts`): the operator reads whether the retries were used up, or a permanent
 * failure was not retried.
 */
export async function withCountedBackoff<T>(
  once: () => Promise<T>,
  b: Backoff,
  signal: AbortSignal,
  onRetry?: (err: AgentError, attempt: number, retriesLeft: number) => void,
): Promise<T> {
  let attempts = 0;
  try {
    return await withBackoff(() => (attempts++, once()), b, signal, onRetry);
  } catch (err) {
    if (err instanceof AgentError) err.attempts = attempts;
    throw err;
  }
}
