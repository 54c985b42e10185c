// How the agent's AWS calls retry throttling. When a fleet bakes at once,
// throttling is the normal case (SSM 40 TPS, ECR 20 TPS per account and region),
// so a throttled call waits long enough to spread the fleet over the quota:
// first retry after 2–6 s, growing ×1.5 (±50 % jitter), no wait longer than 60 s.
// Chosen with `npm run fleet-sim` against the SDK's own modes (docs/fleet.md):
// the SDK's 100 ms full-jitter start makes a fleet retry ~6× per box. Attempts
// go on until the deadline (awsMaxWaitSeconds): a wait that would pass it is cut
// short, so the last attempt is made at the deadline, never stopped early; the
// last AWS error is then what the caller sees, with AWS's own message.
// Only throttling is retried here (docs/reference.md §5: only throttling may use the whole
// awsMaxWaitSeconds). A network failure, a timeout or a 5xx goes back to the
// caller at once: the resolver retries those within their own 60 s budget
// (resolve.ts), with the SDK's short backoff (retryDelayMs's TRANSIENT branch),
// so that each budget has one owner.
import type { RetryErrorInfo, RetryErrorType, RetryStrategyV2, RetryToken } from "@smithy/types";
import type { Random } from "../clock.ts";

const THROTTLE_FIRST_MS = 4000;
const THROTTLE_GROWTH = 1.5;
export const THROTTLE_CAP_MS = 60_000;
const TRANSIENT_BASE_MS = 100;
const TRANSIENT_CAP_MS = 20_000;
/** A bound on attempts besides the deadline, for throttling that answers fast forever. */
export const MAX_ATTEMPTS = 40;

/** Delay before retry number `retry` (1 = first retry); `random` in [0, 1). Pure. */
export function retryDelayMs(errorType: RetryErrorType, retry: number, random: number): number {
  if (errorType === "THROTTLING") {
    // The middle is capped at two thirds of the cap, so that with its ±50 % the wait stays within the cap and still spreads.
    const mid = Math.min((THROTTLE_CAP_MS * 2) / 3, THROTTLE_FIRST_MS * THROTTLE_GROWTH ** (retry - 1));
    return Math.round(mid * (0.5 + random));
  }
  return Math.round(random * Math.min(TRANSIENT_CAP_MS, TRANSIENT_BASE_MS * 2 ** retry));
}

class Token implements RetryToken {
  readonly count: number;
  readonly delay: number;
  readonly startedAt: number;

  constructor(count: number, delay: number, startedAt: number) {
    this.count = count;
    this.delay = delay;
    this.startedAt = startedAt;
  }

  getRetryCount(): number {
    return this.count;
  }

  getRetryDelay(): number {
    return this.delay;
  }
}

export class SpreadRetryStrategy implements RetryStrategyV2 {
  readonly mode = "standard";
  private readonly maxWaitMs: number;
  private readonly now: () => number;
  private readonly random: Random;

  constructor(maxWaitMs: number, now: () => number, random: Random) {
    this.maxWaitMs = maxWaitMs;
    this.now = now;
    this.random = random;
  }

  async acquireInitialRetryToken(_scope: string): Promise<RetryToken> {
    return new Token(0, 0, this.now());
  }

  async refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const t = token as Token;
    const retry = t.count + 1;
    const fail = () => {
      throw info.error ?? new Error(`AWS call failed (${info.errorType})`);
    };
    if (info.errorType !== "THROTTLING" || retry >= MAX_ATTEMPTS) fail();
    const left = this.maxWaitMs - (this.now() - t.startedAt);
    if (left <= 0) fail();
    return new Token(retry, Math.min(left, retryDelayMs(info.errorType, retry, this.random())), t.startedAt);
  }

  recordSuccess(_token: RetryToken): void {}
}
