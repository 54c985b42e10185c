import { describe, expect, it } from "vitest";
import { MAX_CREDENTIALS, MAX_SERVICES, parseSpecText, validateSpec, type Violation } from "./schema.ts";

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

describe("one image, one credential (SPEC §2)", () => {
  it("refuses one image named with two different credentials, at the later service's registryCredentialId", () => {
    const s = good();
    s.registryCredentials.push({ id: "rc_gh2", type: "token", label: "GHCR 2", registry: "ghcr.io", username: "other-bot" });
    s.services.push({ name: "api2", image: "ghcr.io/acme/api:1.4.2", registryCredentialId: "rc_gh2" });
    expect(violations(s)).toEqual([expect.objectContaining({ path: "services[3].registryCredentialId", code: "spec_invalid", message: expect.stringContaining("rc_gh") })]);
  });

  it("refuses one image named with a credential by one service and with none by another", () => {
    const s = good();
    s.services.push({ name: "api-anon", image: "ghcr.io/acme/api:1.4.2" } as never);
    expect(violations(s)).toEqual([expect.objectContaining({ path: "services[3].registryCredentialId", code: "spec_invalid" })]);
  });

  it("accepts one image named twice with the same credential, also under another of Docker Hub's names", () => {
    const s = good();
    s.services.push({ name: "api2", image: "ghcr.io/acme/api:1.4.2", registryCredentialId: "rc_gh" });
    s.services.push({ name: "c1", image: "redis:7", catalog: true });
    expect(violations(s)).toEqual([]);
    s.services[4]!.image = "docker.io/library/redis:7";
    expect(violations(s)).toEqual([]);
  });

  it("refuses a parameterName holding ':' (SSM would read name:version or name:label as a selector)", () => {
    for (const p of [`${PREFIX}rc_gh:1`, `${PREFIX}rc_gh:previous`]) {
      const s = good();
      (s.registryCredentials[0] as Record<string, unknown>)["parameterName"] = p;
      expect(violations(s)).toEqual([expect.objectContaining({ path: "registryCredentials[0].parameterName", code: "spec_invalid", message: expect.stringContaining(":") })]);
    }
  });
});

describe("bounded specs (a spec is untrusted input)", () => {
  it("refuses more services or credentials than a box runs, each at its list's path", () => {
    const s = good() as Record<string, unknown>;
    s["services"] = Array.from({ length: MAX_SERVICES + 1 }, (_, i) => ({ name: `s${i}`, image: `quay.io/acme/s${i}:1` }));
    s["registryCredentials"] = Array.from({ length: MAX_CREDENTIALS + 1 }, (_, i) => ({ id: `rc_${i}`, type: "token", registry: "ghcr.io", username: "u" }));
    expect(violations(s)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: "services", code: "spec_invalid", message: expect.stringContaining(String(MAX_SERVICES)) }),
        expect.objectContaining({ path: "registryCredentials", code: "spec_invalid", message: expect.stringContaining(String(MAX_CREDENTIALS)) }),
      ]),
    );
  });

  it("refuses an image reference longer than any registry accepts", () => {
    const s = good();
    s.services[2]!.image = `quay.io/${"a".repeat(1100)}:1`;
    expect(violations(s)).toEqual([expect.objectContaining({ path: "services[2].image", code: "spec_invalid" })]);
  });

  it("validates the largest spec it accepts with work linear in its size: each service looks its credential up once", () => {
    const s = good() as Record<string, unknown>;
    const creds = Array.from({ length: MAX_CREDENTIALS }, (_, i) => ({ id: `rc_${i}`, type: "token", registry: `r${i}.example.com`, username: "u" }));
    s["registryCredentials"] = creds;
    s["services"] = Array.from({ length: MAX_SERVICES }, (_, i) => ({ name: `s${i}`, image: `r${i % MAX_CREDENTIALS}.example.com/acme/s${i}:1`, registryCredentialId: `rc_${i % MAX_CREDENTIALS}` }));
    let reads = 0;
    const counted = new Proxy(creds, {
      get(target, key, receiver) {
        if (typeof key === "string" && /^\d+$/.test(key)) reads += 1;
        return Reflect.get(target, key, receiver);
      },
    });
    s["registryCredentials"] = counted;
    expect(violations(s)).toEqual([]);
    // zod reads each element once or twice, the rules once more: never once per (service, credential) pair.
    expect(reads).toBeLessThan(10 * MAX_CREDENTIALS);
  });
});

describe("parseSpecText", () => {
  it("says where the JSON breaks without quoting the spec, which may hold a token-as-username", () => {
    // A trailing comma: V8 says `Unexpected token ']', ..."89abcdef",]}" is not valid JSON`.
    const r = parseSpecText('{"registryCredentials": [{"registry": "registry.digitalocean.com", "username": "dop_v1_0123456789abcdef"}, "dop_v1_0123456789abcdef",]}', { ssmParameterPrefix: "/p/" });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.violations[0]!.message).toMatch(/^not valid JSON: /);
    expect(r.violations[0]!.message).not.toMatch(/dop_v1|abcdef/);
  });
});
