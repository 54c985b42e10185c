import { describe, expect, it } from "vitest";
import { bearerMatches } from "./api.ts";
import { watchdogIntervalMs } from "./sd-notify.ts";

describe("bearerMatches", () => {
  it("accepts only the exact token in a Bearer header", () => {
    expect(bearerMatches("Bearer s3cret", "s3cret")).toBe(true);
    expect(bearerMatches("Bearer s3cre", "s3cret")).toBe(false);
    expect(bearerMatches("Bearer s3cretX", "s3cret")).toBe(false);
    expect(bearerMatches("bearer s3cret", "s3cret")).toBe(false);
    expect(bearerMatches("s3cret", "s3cret")).toBe(false);
    expect(bearerMatches(undefined, "s3cret")).toBe(false);
    expect(bearerMatches(undefined, "\u0000no token")).toBe(false);
  });
});

describe("watchdogIntervalMs", () => {
  it("pings at half of WATCHDOG_USEC, only for this process", () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "60000000" })).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "60000000", WATCHDOG_PID: "1" })).toBeUndefined();
    expect(watchdogIntervalMs({})).toBeUndefined();
  });
});
