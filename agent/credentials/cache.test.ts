import { describe, expect, it } from "vitest";
import type { Credential } from "../spec/schema.ts";
import { ECR_REFRESH_BEFORE_MS, MemoryCredentialCache, reuseUntil } from "./cache.ts";

const token: Credential = { id: "rc_gh", type: "token", registry: "ghcr.io", username: "u", parameterName: "/p/rc_gh" };
const ecr: Credential = { id: "rc_ecr", type: "ecr", registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", ecr: { accountId: "123456789012", region: "us-east-1", fips: false, dualStack: false } };
const H = 3600_000;

describe("reuseUntil", () => {
  it("reuses token secrets for credentialCacheSeconds", () => {
    expect(reuseUntil(token, { username: "u", password: "p", serverAddress: "ghcr.io" }, 1000, 300)).toBe(1000 + 300_000);
  });
  it("reuses a 12 h ECR token until a quarter of its life before expiry, at least 30 min before", () => {
    expect(reuseUntil(ecr, { username: "AWS", password: "p", serverAddress: "x", expiresAt: 12 * H }, 0, 300)).toBe(12 * H - 3 * H);
    expect(reuseUntil(ecr, { username: "AWS", password: "p", serverAddress: "x", expiresAt: 40 * 60_000 }, 0, 300)).toBe(40 * 60_000 - ECR_REFRESH_BEFORE_MS);
  });
});

describe("MemoryCredentialCache", () => {
  it("serves an entry until its reuse time and never after, and never past expiresAt", () => {
    const c = new MemoryCredentialCache(300);
    const auth = { username: "u", password: "p", serverAddress: "ghcr.io" };
    c.put(token, auth, 0);
    expect(c.get(token, 299_999)).toBe(auth);
    expect(c.get(token, 300_000)).toBeUndefined();
    const nearlyExpired = { username: "AWS", password: "p", serverAddress: "x", expiresAt: 10 * 60_000 };
    c.put(ecr, nearlyExpired, 0);
    expect(c.get(ecr, 0)).toBeUndefined();
  });
  it("keys by what is fetched, so a changed parameter name is not served the old secret", () => {
    const c = new MemoryCredentialCache(300);
    c.put(token, { username: "u", password: "p", serverAddress: "ghcr.io" }, 0);
    expect(c.get({ ...token, parameterName: "/p/other" }, 1)).toBeUndefined();
    c.delete(token);
    expect(c.get(token, 1)).toBeUndefined();
  });
  it("keeps nothing with a zero cache time", () => {
    const c = new MemoryCredentialCache(0);
    c.put(token, { username: "u", password: "p", serverAddress: "ghcr.io" }, 0);
    expect(c.get(token, 0)).toBeUndefined();
  });
});
