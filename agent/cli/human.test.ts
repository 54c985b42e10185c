import { describe, expect, it } from "vitest";
import type { BakeResult } from "../bake/types.ts";
import { HumanRenderer, progressText } from "./human.ts";

describe("progressText", () => {
  it("shows bytes and layers where the engine counts bytes", () => {
    expect(progressText({ current: 2_100_000, total: 8_000_000, layers: 3, layersDownloaded: 1, layersDone: 0 })).toBe("2.1 MB / 8.0 MB (26%), 1/3 layers downloaded, 0/3 unpacked");
  });
  it("shows layers alone where it hides them (containerd image store)", () => {
    expect(progressText({ current: 0, total: 0, layers: 3, layersDownloaded: 2, layersDone: 1 })).toBe("2/3 layers downloaded, 1/3 unpacked");
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
  it("says nothing of attempts where the agent did not count them", () => {
    expect(failed({ ...body, code: "aws_credentials_unavailable", retryable: true })).toEqual(["error: service g (ghcr.io/acme/g:1): aws_credentials_unavailable (retryable)"]);
  });
});
