import type { SdkError } from "@smithy/types";
import { describe, expect, it } from "vitest";
import { retryDelayMs, SpreadRetryStrategy, THROTTLE_CAP_MS } from "./retry-strategy.ts";

describe("retryDelayMs", () => {
  it("spreads throttled retries: 2–6 s first, growing ×1.5, capped", () => {
    expect(retryDelayMs("THROTTLING", 1, 0)).toBe(2000);
    expect(retryDelayMs("THROTTLING", 1, 0.999)).toBe(5996);
    expect(retryDelayMs("THROTTLING", 2, 0.5)).toBe(6000);
    expect(retryDelayMs("THROTTLING", 3, 0.5)).toBe(9000);
    expect(retryDelayMs("THROTTLING", 30, 0.9999)).toBeLessThanOrEqual(THROTTLE_CAP_MS);
    expect(retryDelayMs("THROTTLING", 30, 0.9999)).toBeGreaterThan(THROTTLE_CAP_MS * 0.99);
    expect(retryDelayMs("THROTTLING", 30, 0)).toBe(THROTTLE_CAP_MS / 3);
  });
  it("backs off other transient errors with full jitter from 100 ms", () => {
    expect(retryDelayMs("SERVER_ERROR", 1, 0.999)).toBeLessThanOrEqual(200);
    expect(retryDelayMs("TRANSIENT", 3, 0.5)).toBe(400);
    expect(retryDelayMs("TRANSIENT", 20, 0.999)).toBeLessThan(20_000);
  });
});

describe("SpreadRetryStrategy", () => {
  const sdkError = (name: string, message: string) => Object.assign(new Error(message), { name, $metadata: {} }) as unknown as SdkError;
  const throttled = { errorType: "THROTTLING" as const, error: sdkError("ThrottlingException", "Rate exceeded") };

  async function throttledUntilRefused(maxWaitMs: number, random: number) {
    let t = 0;
    const s = new SpreadRetryStrategy(maxWaitMs, () => t, () => random);
    let token = await s.acquireInitialRetryToken("ssm");
    const attemptsAt = [t];
    for (let i = 0; i < 100; i++) {
      try {
        token = await s.refreshRetryTokenForRetry(token, throttled);
      } catch (err) {
        return { attemptsAt, error: err as Error };
      }
      t += token.getRetryDelay();
      attemptsAt.push(t);
    }
    throw new Error("never gave up");
  }

  it("goes on retrying throttling until the deadline, the last attempt at it, then gives AWS's error back", async () => {
    const { attemptsAt, error } = await throttledUntilRefused(20_000, 0.5);
    expect(attemptsAt).toEqual([0, 4000, 10_000, 19_000, 20_000]);
    expect(error.message).toBe("Rate exceeded");
  });

  it("does not stop after one attempt when the first backoff would overshoot a short deadline", async () => {
    const { attemptsAt } = await throttledUntilRefused(3000, 0.9);
    expect(attemptsAt).toEqual([0, 3000]);
  });

  it("does not retry client errors", async () => {
    const s = new SpreadRetryStrategy(60_000, () => 0, () => 0.5);
    const token = await s.acquireInitialRetryToken("ssm");
    const denied = sdkError("AccessDeniedException", "denied");
    await expect(s.refreshRetryTokenForRetry(token, { errorType: "CLIENT_ERROR", error: denied })).rejects.toThrow("denied");
  });

  it("gives a network failure, a timeout and a 5xx back at once: their 60 s budget is the resolver's, not the throttling deadline", async () => {
    const s = new SpreadRetryStrategy(600_000, () => 0, () => 0.5);
    const token = await s.acquireInitialRetryToken("ssm");
    const notFound = Object.assign(sdkError("Error", "getaddrinfo ENOTFOUND ssm.us-east-1.amazonaws.com"), { code: "ENOTFOUND" });
    await expect(s.refreshRetryTokenForRetry(token, { errorType: "TRANSIENT", error: notFound })).rejects.toThrow("ENOTFOUND");
    const timeout = sdkError("TimeoutError", "the request socket did not establish a connection");
    await expect(s.refreshRetryTokenForRetry(token, { errorType: "TRANSIENT", error: timeout })).rejects.toThrow("did not establish");
    const unavailable = sdkError("ServiceUnavailable", "The request has failed due to a temporary failure of the server.");
    await expect(s.refreshRetryTokenForRetry(token, { errorType: "SERVER_ERROR", error: unavailable })).rejects.toThrow("temporary failure");
  });
});
