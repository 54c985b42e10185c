import { describe, expect, it } from "vitest";
import { parseSpecText, validateSpec, type Violation } from "./schema.ts";

const PREFIX = "/slothbox/registry-credentials/";
const D = "sha256:" + "b".repeat(64);
const ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

function good() {
  return {
    bakeId: "bk_01HZX",
    orgId: "org_123",
    registryCredentials: [
      { id: "rc_gh", type: "token", label: "GHCR", registry: "ghcr.io", username: "acme-bot" },
      { id: "rc_ecr", type: "ecr", label: "prod ECR", registry: ECR },
    ],
    services: [
      { name: "api", image: "ghcr.io/acme/api:1.4.2", registryCredentialId: "rc_gh" },
      { name: "worker", image: `${ECR}/worker@${D}`, registryCredentialId: "rc_ecr" },
      { name: "cache", image: "redis:7", catalog: true },
    ],
  };
}

function violations(input: unknown): Violation[] {
  const r = validateSpec(input, { ssmParameterPrefix: PREFIX });
  return r.ok ? [] : r.violations;
}

describe("validateSpec", () => {
  it("accepts SPEC §2's example and resolves parameter names and ECR regions", () => {
    const r = validateSpec(good(), { ssmParameterPrefix: PREFIX });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec.services.map((s) => s.ref.canonical)).toEqual(["ghcr.io/acme/api:1.4.2", `${ECR}/worker@${D}`, "docker.io/library/redis:7"]);
    expect(r.spec.credentials[0]?.parameterName).toBe(`${PREFIX}rc_gh`);
    expect(r.spec.credentials[1]?.ecr?.region).toBe("us-east-1");
  });

  it("reports every violation at once with its path and code", () => {
    const s = good();
    (s.services[0] as Record<string, unknown>)["extra"] = 1;
    s.services[1]!.registryCredentialId = "rc_missing";
    s.services.push({ name: "api", image: "quay.io/x/y:1", registryCredentialId: "rc_gh" });
    s.services.push({ name: "cat", image: "redis:7", catalog: true, registryCredentialId: "rc_gh" } as never);
    s.registryCredentials[0]!.registry = "https://ghcr.io";
    const v = violations(s);
    expect(v).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: "services[0].extra", code: "spec_invalid" }),
        expect.objectContaining({ path: "services[1].registryCredentialId", code: "credential_not_found" }),
        expect.objectContaining({ path: "services[3].name", code: "spec_invalid" }),
        expect.objectContaining({ path: "services[4].registryCredentialId", code: "spec_invalid" }),
        expect.objectContaining({ path: "registryCredentials[0].registry", code: "spec_invalid" }),
      ]),
    );
  });

  it("reports an image on another registry than its credential as registry_mismatch", () => {
    const s = good();
    s.services[0]!.image = "quay.io/acme/api:1";
    expect(violations(s)).toEqual([expect.objectContaining({ path: "services[0].image", code: "registry_mismatch" })]);
  });

  it("treats Docker Hub's names as one registry", () => {
    const s = good();
    s.registryCredentials[0]!.registry = "docker.io";
    s.services[0]!.image = "registry-1.docker.io/acme/api:1";
    expect(violations(s)).toEqual([]);
    s.services[0]!.image = "acme/api:1";
    expect(violations(s)).toEqual([]);
  });

  it("refuses a parameterName outside the prefix, including by ..", () => {
    for (const p of ["/other/secret", `${PREFIX}../x`, PREFIX, "/slothbox/registry-credentials-evil/x"]) {
      const s = good();
      (s.registryCredentials[0] as Record<string, unknown>)["parameterName"] = p;
      expect(violations(s)).toEqual([expect.objectContaining({ path: "registryCredentials[0].parameterName", code: "spec_invalid" })]);
    }
    const s = good();
    (s.registryCredentials[0] as Record<string, unknown>)["parameterName"] = `${PREFIX}team/rc_gh`;
    expect(violations(s)).toEqual([]);
  });

  it("refuses a token credential without username, and ECR credentials on non-ECR or public hosts", () => {
    const s = good();
    delete (s.registryCredentials[0] as Record<string, unknown>)["username"];
    s.registryCredentials[1]!.registry = "public.ecr.aws";
    s.services[1]!.image = "public.ecr.aws/worker:1";
    const v = violations(s);
    expect(v).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: "registryCredentials[0].username", code: "spec_invalid" }),
        expect.objectContaining({ path: "registryCredentials[1].registry", code: "spec_invalid", message: expect.stringContaining("ECR Public") }),
      ]),
    );
    s.registryCredentials[1]!.registry = `${ECR}.evil.example`;
    expect(violations(s)).toEqual(expect.arrayContaining([expect.objectContaining({ path: "registryCredentials[1].registry" })]));
  });

  it("reports a bad image reference at services[i].image and missing fields at their path", () => {
    const s = good() as Record<string, unknown>;
    (s["services"] as Record<string, unknown>[])[2]!["image"] = "Redis:7";
    delete s["orgId"];
    const v = violations(s);
    expect(v).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: "services[2].image", code: "spec_invalid" }),
        expect.objectContaining({ path: "orgId", code: "spec_invalid" }),
      ]),
    );
  });

  it("reports a root that is not JSON, or not an object, at the root", () => {
    const r = parseSpecText("{nope", { ssmParameterPrefix: PREFIX });
    expect(r.ok ? [] : r.violations).toEqual([expect.objectContaining({ path: "", code: "spec_invalid" })]);
    expect(violations([])).toEqual([expect.objectContaining({ path: "" })]);
  });
});
