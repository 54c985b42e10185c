import { describe, expect, it } from "vitest";
import { Metrics } from "./metrics.ts";

describe("Metrics", () => {
  it("counts signature verifications by outcome", async () => {
    const m = new Metrics(async () => 0);
    const image = "ghcr.io/acme/billing:3.1";
    m.observeStep({ kind: "verify", image, policyId: "sp", outcome: "verified" });
    m.observeStep({ kind: "verify", image, policyId: "sp", outcome: "verified" });
    m.observeStep({ kind: "verify", image, policyId: "sp", outcome: "rejected" });
    m.observeStep({ kind: "verify", image, policyId: "sp", outcome: "reused" });
    const text = await m.registry.metrics();
    expect(text).toContain('slothbox_signature_verifications_total{result="verified"} 2');
    expect(text).toContain('slothbox_signature_verifications_total{result="rejected"} 1');
    expect(text).toContain('slothbox_signature_verifications_total{result="reused"} 1');
    expect(text).toContain("# TYPE slothbox_signature_verifications_total counter");
  });
});
