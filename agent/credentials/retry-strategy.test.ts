import type { SdkError } from "@smithy/types";
import { describe, expect, it } from "vitest";
import { retryDelayMs, SpreadRetryStrategy, THROTTLE_CAP_MS } from "./retry-strategy.ts";

describe("retryDelayMs", () => {
  it("spreads throttled retries: 2–6 s first, growing ×1.5, capped", () => {
    expect(retryDelayMs("THROTTLING", 1, 0)).toBe(2000);
    expect(retryDelayMs("THROTTLING", 1, 0.999)).toBe(5996);
    expect(retryDelayMs("THROTTLING", 2, 0.5)).toBe(6000);
    expect(retryDelayMs("THROTTLING", 3, 0.5)).toBe(9000);
    expect(retryDelayMs("THROTTLING", 30, 0.999)).toBeLessThan(THROTTLE_CAP_MS * 1.5);
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

  it("retries throttling until the next wait would pass the deadline, then gives AWS's error back", async () => {
    let t = 0;
    const s = new SpreadRetryStrategy(20_000, () => t, () => 0.5);
    let token = await s.acquireInitialRetryToken("ssm");
    const delays: number[] = [];
    for (;;) {
      try {
        token = await s.refreshRetryTokenForRetry(token, throttled);
      } catch (err) {
        expect((err as Error).message).toBe("Rate exceeded");
        break;
      }
      delays.push(token.getRetryDelay());
      t += token.getRetryDelay();
    }
    expect(delays).toEqual([4000, 6000, 9000]);
    expect(t).toBeLessThanOrEqual(20_000);
  });

  it("does not retry client errors", async () => {
    const s = new SpreadRetryStrategy(60_000);
    const token = await s.acquireInitialRetryToken("ssm");
    const denied = sdkError("AccessDeniedException", "denied");
    await expect(s.refreshRetryTokenForRetry(token, { errorType: "CLIENT_ERROR", error: denied })).rejects.toThrow("denied");
  });
});
