import { describe, expect, it } from "vitest";
import { describeEvent, makeEvent } from "./events.ts";

describe("describeEvent", () => {
  it("says what happened, and for a failure the code, the words and the hint", () => {
    const error = { code: "registry_auth_failed" as const, message: 'Get "https://ghcr.io/v2/": denied: denied', hint: "Update the credential.", retryable: false };
    expect(describeEvent(makeEvent("service.failed", "bk_1", 0, { service: "api", image: "ghcr.io/acme/api:1", error }))).toBe(
      'bake bk_1: service api (ghcr.io/acme/api:1) failed: registry_auth_failed: Get "https://ghcr.io/v2/": denied: denied — hint: Update the credential.',
    );
    expect(describeEvent(makeEvent("service.pulled", "bk_1", 0, { service: "api", image: "ghcr.io/acme/api:1", digest: "sha256:ab", reconcile: true }))).toBe(
      "bake bk_1 (reconcile): service api (ghcr.io/acme/api:1) pulled sha256:ab",
    );
    const signature = { policyId: "sp_release", format: "cosign" as const, keyId: "3b6f" };
    expect(describeEvent(makeEvent("service.pulled", "bk_1", 0, { service: "api", image: "ghcr.io/acme/api:1", digest: "sha256:ab", signature }))).toBe(
      "bake bk_1: service api (ghcr.io/acme/api:1) pulled sha256:ab, signature verified: cosign by key 3b6f of sp_release",
    );
    expect(describeEvent(makeEvent("bake.failed", "bk_1", 0, { error: { ...error, code: "interrupted" } }))).toMatch(/^bake bk_1 failed: interrupted: /);
  });
});
