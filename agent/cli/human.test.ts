import { describe, expect, it } from "vitest";
import type { BakeResult, BakeStep } from "../bake/types.ts";
import { validateSpec } from "../spec/schema.ts";
import { HumanRenderer, progressText } from "./human.ts";
import { violationLines } from "./spec-file.ts";

describe("progressText", () => {
  it("shows bytes and layers where the engine counts bytes", () => {
    expect(progressText({ current: 2_100_000, total: 8_000_000, layers: 3, layersSized: 3, layersDownloaded: 1, layersDone: 0 })).toBe(
      "2.1 MB / 8.0 MB (26%), 1/3 layers downloaded, 0/3 unpacked",
    );
  });
  it("shows bytes so far, without a total or a percentage, until every layer's size is known", () => {
    // The engine sizes a layer when it starts downloading it, three at a time: a total of the
    // layers started so far would make the percentage jump backwards as more start.
    expect(progressText({ current: 131_400_000, total: 162_100_000, layers: 12, layersSized: 9, layersDownloaded: 6, layersDone: 5 })).toBe(
      "131.4 MB so far, 6/12 layers downloaded, 5/12 unpacked",
    );
  });
  it("shows layers alone where it hides them (containerd image store)", () => {
    expect(progressText({ current: 0, total: 0, layers: 3, layersSized: 2, layersDownloaded: 2, layersDone: 1 })).toBe("2/3 layers downloaded, 1/3 unpacked");
  });
});

describe("HumanRenderer progress", () => {
  const image = "quay.io/acme/big:1";
  const progress = (layers: number): BakeStep => ({
    kind: "progress",
    image,
    progress: { current: 0, total: 0, layers, layersSized: 0, layersDownloaded: 0, layersDone: 0 },
  });

  it("waits a few seconds into a pull before its first progress line, then shows one every few seconds", () => {
    const t0 = Date.UTC(2026, 10, 25);
    let now = t0;
    const lines: string[] = [];
    const r = new HumanRenderer((l) => lines.push(l), () => now);
    r.step({ kind: "pull-start", image, services: ["big"] });
    // The engine names a pull's layers one line at a time: at once, it has named only the first.
    now = t0 + 50;
    r.step(progress(1));
    now = t0 + 2900;
    r.step(progress(12));
    expect(lines.filter((l) => l.includes("layers downloaded"))).toEqual([]);
    now = t0 + 3100;
    r.step(progress(12));
    now = t0 + 4000;
    r.step(progress(12));
    now = t0 + 6200;
    r.step(progress(12));
    expect(lines.filter((l) => l.includes("layers downloaded"))).toEqual([
      "[  3.1s]   quay.io/acme/big:1: 0/12 layers downloaded, 0/12 unpacked",
      "[  6.2s]   quay.io/acme/big:1: 0/12 layers downloaded, 0/12 unpacked",
    ]);
  });
});

describe("the summary of a failure", () => {
  const failed = (error: NonNullable<BakeResult["error"]>): string[] => {
    const lines: string[] = [];
    const result: BakeResult = {
      bakeId: "bk_1",
      status: "failed",
      startedAt: "2026-01-01T00:00:00Z",
      durationMs: 1,
      services: [{ name: "g", image: "ghcr.io/acme/g:1", status: "failed", durationMs: 1, error }],
    };
    new HumanRenderer((l) => lines.push(l), () => 0).summary(result, []);
    return lines.filter((l) => l.startsWith("error:"));
  };
  const body = { message: "received unexpected HTTP status: 502 Bad Gateway", hint: "h" };

  it("says the retries were used up", () => {
    expect(failed({ ...body, code: "registry_unreachable", retryable: true, attempts: 3 })).toEqual([
      "error: service g (ghcr.io/acme/g:1): registry_unreachable (retryable; 3 attempts failed, the retries are used up)",
    ]);
  });
  it("says no retry was allowed", () => {
    expect(failed({ ...body, code: "registry_unreachable", retryable: true, attempts: 1 })).toEqual([
      "error: service g (ghcr.io/acme/g:1): registry_unreachable (retryable; attempted once, pullRetries is 0)",
    ]);
  });
  it("says a permanent failure was not retried", () => {
    expect(failed({ ...body, code: "disk_full", retryable: false, attempts: 1 })).toEqual(["error: service g (ghcr.io/acme/g:1): disk_full (not retryable; attempted once)"]);
  });
  it("says an AWS call was retried for its budget of time, not pullRetries", () => {
    expect(failed({ ...body, code: "aws_unreachable", retryable: true, attempts: 14 })).toEqual(["error: service g (ghcr.io/acme/g:1): aws_unreachable (retryable; 14 attempts failed within a minute)"]);
    expect(failed({ ...body, code: "aws_throttled", retryable: true, attempts: 6 })).toEqual([
      "error: service g (ghcr.io/acme/g:1): aws_throttled (retryable; 6 attempts failed, throttled until awsMaxWaitSeconds)",
    ]);
  });
  it("shows each retry of a credential with the attempts so far and the time the agent keeps trying", () => {
    const lines: string[] = [];
    const credential = { id: "rc_gh", type: "token" as const, registry: "ghcr.io", username: "u" };
    const error = { code: "aws_unreachable" as const, message: "m", hint: "h", retryable: true, attempts: 2 };
    new HumanRenderer((l) => lines.push(l), () => 0).step({ kind: "credential-retry", credential, error, attempts: 2, budgetLeftMs: 51_200 });
    expect(lines).toEqual(["[  0.0s] credential rc_gh: aws_unreachable (m); 2 attempts so far, retrying for up to 52 s more"]);
  });
  it("says nothing of attempts where the agent did not count them", () => {
    expect(failed({ ...body, code: "aws_credentials_unavailable", retryable: true })).toEqual(["error: service g (ghcr.io/acme/g:1): aws_credentials_unavailable (retryable)"]);
  });
});

describe("strings from the spec on the terminal", () => {
  // What a spec may carry past validation: a username and a parameterName are free text (a label too).
  const ESC = "\x1b]0;owned\x07\x1b[2J\x1b[31m";
  const input = {
    bakeId: "bk_esc",
    orgId: "org_1",
    registryCredentials: [{ id: "rc_1", type: "token", registry: "ghcr.io", username: `bot${ESC}\n[  9.9s] bake bk_esc succeeded`, parameterName: `/slothbox/registry-credentials/x${ESC}\u202e` }],
    services: [{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_1" }],
  };
  // eslint-disable-next-line no-control-regex -- looking for control characters is the point
  const shown = (l: string) => expect(l).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);

  it("passes validation, then shows neither escapes, control characters, bidi overrides nor a forged line", () => {
    const v = validateSpec(input, { ssmParameterPrefix: "/slothbox/registry-credentials/" });
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    const credential = v.spec.credentials[0]!;
    const lines: string[] = [];
    const r = new HumanRenderer((l) => lines.push(l), () => 0);
    r.step({ kind: "credential", credential, phase: "fetch" });
    r.step({ kind: "credential", credential, phase: "login" });
    expect(lines).toHaveLength(2);
    lines.forEach(shown);
    expect(lines[0]).toBe("[  0.0s] credential rc_1: token for ghcr.io — reading SSM /slothbox/registry-credentials/x");
    expect(lines[1]).toBe("[  0.0s] credential rc_1: logging in to ghcr.io as bot; [  9.9s] bake bk_esc succeeded");
  });

  it("in a failure's words and hint, as in the summary table", () => {
    const lines: string[] = [];
    const result: BakeResult = {
      bakeId: "bk_1",
      status: "failed",
      startedAt: "2026-01-01T00:00:00Z",
      durationMs: 1,
      services: [{ name: "g", image: "ghcr.io/acme/g:1", status: "failed", durationMs: 1, error: { code: "internal", message: `boom${ESC}\nbake bk_1 succeeded`, hint: `h${ESC}`, retryable: false, registryMessage: `denied${ESC}` } }],
    };
    new HumanRenderer((l) => lines.push(l), () => 0).summary(result, []);
    lines.forEach(shown);
    expect(lines).toContain("  reported: boom; bake bk_1 succeeded");
    expect(lines).toContain("  registry said: denied");
    expect(lines).toContain("  hint: h");
  });

  it("in the violations of a spec that fails validation (the offending value is quoted in the message, an unknown key is the path)", () => {
    const v = validateSpec(
      { ...input, [`x${ESC}`]: 1, services: [{ name: "api", image: `ghcr.io/acme/api:1${ESC}`, registryCredentialId: `rc${ESC}` }] },
      { ssmParameterPrefix: "/slothbox/registry-credentials/" },
    );
    expect(v.ok).toBe(false);
    if (v.ok) return;
    const lines = violationLines(v.violations);
    expect(lines.length).toBeGreaterThanOrEqual(3);
    lines.forEach(shown);
    expect(lines.some((l) => l.includes('"ghcr.io/acme/api:1"'))).toBe(true);
  });
});

describe("HumanRenderer signatures", () => {
  const keyId = "c".repeat(64);
  const digest = "sha256:" + "a".repeat(64);

  it("says which key of which policy verified an image, during the bake and in the summary", () => {
    const lines: string[] = [];
    const r = new HumanRenderer((l) => lines.push(l), () => 0);
    const signature = { policyId: "sp_release", format: "cosign" as const, keyId };
    r.step({ kind: "verify-start", image: "ghcr.io/acme/billing:3.1", policyId: "sp_release" });
    r.step({ kind: "verify", image: "ghcr.io/acme/billing:3.1", policyId: "sp_release", outcome: "verified", digest, signature });
    r.summary(
      { bakeId: "bk", status: "succeeded", startedAt: "", durationMs: 0, services: [{ name: "billing", image: "ghcr.io/acme/billing:3.1", status: "pulled", digest, durationMs: 0, signature }] },
      [],
    );
    expect(lines[1]).toBe(`[  0.0s] verified ghcr.io/acme/billing:3.1 ${digest}: cosign signature by key ${keyId} of sp_release`);
    expect(lines).toContain(`signature: billing: cosign signature by key ${keyId} of sp_release`);
  });

  it("says an image that did not verify was not pulled", () => {
    const lines: string[] = [];
    new HumanRenderer((l) => lines.push(l), () => 0).step({ kind: "verify", image: "ghcr.io/acme/billing:3.1", policyId: "sp_release", outcome: "rejected", digest });
    expect(lines).toEqual([`[  0.0s] NOT VERIFIED ghcr.io/acme/billing:3.1 ${digest}: no signature verifies with a key of sp_release; nothing pulled`]);
  });
});
