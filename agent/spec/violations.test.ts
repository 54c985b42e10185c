// Every rule's violation word for word, and where it lands, for specs that break
// one rule or many: the messages are part of the contract (the CLI prints them,
// the API returns them), so a change to how the spec is validated must not change one.
import { describe, expect, it } from "vitest";
import { validateSpec } from "./schema.ts";

const PREFIX = "/slothbox/registry-credentials/";
const ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const tok = (id: string, extra: Record<string, unknown> = {}) => ({ id, type: "token", registry: "ghcr.io", username: "bot", ...extra });
const svc = (name: string, image: unknown, extra: Record<string, unknown> = {}) => ({ name, image, ...extra });
const spec = (creds: unknown[], services: unknown[]) => ({ bakeId: "bk_1", orgId: "o", registryCredentials: creds, services });

/** A violation as [path, code, message]. */
type Row = [string, string, string];

const violations = (input: unknown): Row[] => {
  const r = validateSpec(input, { ssmParameterPrefix: PREFIX });
  return r.ok ? [] : r.violations.map((v) => [v.path, v.code, v.message]);
};

const CASES: [string, unknown, Row[]][] = [
  [
    "duplicate credential id",
    spec([tok("rc"), tok("rc", { username: "other" })], [svc("a", "ghcr.io/x/y:1", { registryCredentialId: "rc" })]),
    [
      ["registryCredentials[1].id", "spec_invalid", "duplicate credential id \"rc\""],
    ],
  ],
  [
    "duplicate id of a credential that failed its rules is not a duplicate",
    spec([{ id: "rc", type: "token", registry: "ghcr.io" }, tok("rc"), tok("rc")], [svc("a", "redis:7")]),
    [
      ["registryCredentials[0].username", "spec_invalid", "token credentials need a username"],
      ["registryCredentials[2].id", "spec_invalid", "duplicate credential id \"rc\""],
    ],
  ],
  [
    "registry with a scheme, a path, and unbracketed IPv6",
    spec([tok("r1", { registry: "https://ghcr.io" }), tok("r2", { registry: "ghcr.io/acme" }), tok("r3", { registry: "fd00::1:5000" }), tok("r4", { registry: "" })], [svc("a", "redis:7")]),
    [
      ["registryCredentials[0].registry", "spec_invalid", "registry \"https://ghcr.io\" must be a host only, without a scheme (e.g. ghcr.io, not https://ghcr.io)"],
      ["registryCredentials[1].registry", "spec_invalid", "registry \"ghcr.io/acme\" must be a host only, without a path"],
      ["registryCredentials[2].registry", "spec_invalid", "registry \"fd00::1:5000\" is an IPv6 address without brackets: write it as [fd00::1] or [fd00::1]:5000"],
      ["registryCredentials[3].registry", "spec_invalid", "registry \"\" must not be empty"],
    ],
  ],
  [
    "ecr credential on a non-ECR host, on ECR Public, with a parameterName",
    spec([{ id: "e1", type: "ecr", registry: "ghcr.io" }, { id: "e2", type: "ecr", registry: "public.ecr.aws" }, { id: "e3", type: "ecr", registry: ECR, parameterName: `${PREFIX}e3` }, { id: "e4", type: "ecr", registry: "https://x", parameterName: 5 }, { id: "e5", type: "ecr", registry: ECR, parameterName: 5 }], [svc("a", "redis:7")]),
    [
      ["registryCredentials[3].parameterName", "spec_invalid", "Invalid input: expected string, received number"],
      ["registryCredentials[4].parameterName", "spec_invalid", "Invalid input: expected string, received number"],
      ["registryCredentials[0].registry", "spec_invalid", "registry \"ghcr.io\": is not an ECR private registry host (<12 digits>.dkr.ecr.<region>.amazonaws.com or another partition's form)"],
      ["registryCredentials[1].registry", "spec_invalid", "registry \"public.ecr.aws\": ECR Public (public.ecr.aws) is not a private registry; use a catalog or anonymous image instead"],
      ["registryCredentials[2].parameterName", "spec_invalid", "ecr credentials have no stored secret, so no parameterName"],
      ["registryCredentials[3].registry", "spec_invalid", "registry \"https://x\" must be a host only, without a scheme (e.g. ghcr.io, not https://ghcr.io)"],
      ["registryCredentials[4].parameterName", "spec_invalid", "ecr credentials have no stored secret, so no parameterName"],
    ],
  ],
  [
    "token credential without a username, with a non-string username, with an empty one",
    spec([{ id: "t1", type: "token", registry: "ghcr.io" }, tok("t2", { username: 7 }), tok("t3", { username: "" })], [svc("a", "redis:7")]),
    [
      ["registryCredentials[1].username", "spec_invalid", "Invalid input: expected string, received number"],
      ["registryCredentials[2].username", "spec_invalid", "Too small: expected string to have >=1 characters"],
      ["registryCredentials[0].username", "spec_invalid", "token credentials need a username"],
    ],
  ],
  [
    "parameterName with ':', outside the prefix, by .., the prefix itself, without a leading slash",
    spec([tok("p1", { parameterName: `${PREFIX}p1:3` }), tok("p2", { parameterName: "/other/x" }), tok("p3", { parameterName: `${PREFIX}a/../b` }), tok("p4", { parameterName: PREFIX }), tok("p5", { parameterName: PREFIX.slice(1) + "p5" }), tok("p6", { parameterName: "" })], [svc("a", "redis:7")]),
    [
      ["registryCredentials[5].parameterName", "spec_invalid", "Too small: expected string to have >=1 characters"],
      ["registryCredentials[0].parameterName", "spec_invalid", "parameterName \"/slothbox/registry-credentials/p1:3\" holds \":\": SSM reads name:version and name:label as selectors, and a spec may not pick an older version of a secret"],
      ["registryCredentials[1].parameterName", "spec_invalid", "parameterName \"/other/x\" is outside the configured prefix /slothbox/registry-credentials/: a spec may only name parameters under it"],
      ["registryCredentials[2].parameterName", "spec_invalid", "parameterName \"/slothbox/registry-credentials/a/../b\" is outside the configured prefix /slothbox/registry-credentials/: a spec may only name parameters under it"],
      ["registryCredentials[3].parameterName", "spec_invalid", "parameterName \"/slothbox/registry-credentials/\" is outside the configured prefix /slothbox/registry-credentials/: a spec may only name parameters under it"],
      ["registryCredentials[5].parameterName", "spec_invalid", "parameterName \"\" is outside the configured prefix /slothbox/registry-credentials/: a spec may only name parameters under it"],
    ],
  ],
  [
    "duplicate service name",
    spec([], [svc("a", "redis:7", { catalog: true }), svc("a", "quay.io/x/y:1"), svc("a", "quay.io/x/z:1")]),
    [
      ["services[1].name", "spec_invalid", "duplicate service name \"a\""],
      ["services[2].name", "spec_invalid", "duplicate service name \"a\""],
    ],
  ],
  [
    "bad image references and out-of-bounds images",
    spec([], [svc("a", "Redis:7"), svc("b", ""), svc("c", "quay.io/" + "a".repeat(1100)), svc("d", "sha256:" + "b".repeat(64)), svc("e", 7)]),
    [
      ["services[1].image", "spec_invalid", "Too small: expected string to have >=1 characters"],
      ["services[2].image", "spec_invalid", "Too big: expected string to have <=1024 characters"],
      ["services[4].image", "spec_invalid", "Invalid input: expected string, received number"],
      ["services[0].image", "spec_invalid", "\"Redis:7\": invalid reference format: repository name (library/Redis) must be lowercase"],
      ["services[3].image", "spec_invalid", "\"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\": reference has no name: a digest alone is not an image; pin an image as name@sha256:<digest>"],
    ],
  ],
  [
    "catalog service with a credential",
    spec([tok("rc")], [svc("a", "ghcr.io/x/y:1", { catalog: true, registryCredentialId: "rc" })]),
    [
      ["services[0].registryCredentialId", "spec_invalid", "registryCredentialId is only valid on custom services; catalog images come from their public registries"],
    ],
  ],
  [
    "credential not found, empty credential id",
    spec([tok("rc")], [svc("a", "ghcr.io/x/y:1", { registryCredentialId: "nope" }), svc("b", "ghcr.io/x/z:1", { registryCredentialId: "" })]),
    [
      ["services[1].registryCredentialId", "spec_invalid", "Too small: expected string to have >=1 characters"],
      ["services[0].registryCredentialId", "credential_not_found", "no credential with id \"nope\" in registryCredentials"],
      ["services[1].registryCredentialId", "credential_not_found", "no credential with id \"\" in registryCredentials"],
    ],
  ],
  [
    "credential that failed its own rules is found, and not matched",
    spec([{ id: "rc", type: "token", registry: "quay.io" }], [svc("a", "ghcr.io/x/y:1", { registryCredentialId: "rc" })]),
    [
      ["registryCredentials[0].username", "spec_invalid", "token credentials need a username"],
    ],
  ],
  [
    "registry mismatch, also across Docker Hub's names and case",
    spec([tok("rc"), tok("hub", { registry: "index.docker.io" }), tok("up", { registry: "GHCR.io" })], [svc("a", "quay.io/x/y:1", { registryCredentialId: "rc" }), svc("b", "acme/y:1", { registryCredentialId: "hub" }), svc("c", "ghcr.io/x/y:2", { registryCredentialId: "up" })]),
    [
      ["services[0].image", "registry_mismatch", "image \"quay.io/x/y:1\" lives on quay.io but credential \"rc\" is for ghcr.io"],
    ],
  ],
  [
    "one image with two credentials, with one and none, with none and one",
    spec([tok("r1"), tok("r2", { username: "u2" })], [svc("a", "ghcr.io/x/y:1", { registryCredentialId: "r1" }), svc("b", "ghcr.io/x/y:1", { registryCredentialId: "r2" }), svc("c", "ghcr.io/x/y:1"), svc("d", "quay.io/x/q:1"), svc("e", "quay.io/x/q:1", { registryCredentialId: "nope" })]),
    [
      ["services[1].registryCredentialId", "spec_invalid", "image \"ghcr.io/x/y:1\" is also pulled for service \"a\" with credential \"r1\": one image is pulled once, with one credential"],
      ["services[2].registryCredentialId", "spec_invalid", "image \"ghcr.io/x/y:1\" is also pulled for service \"a\" with credential \"r1\": one image is pulled once, with one credential"],
      ["services[4].registryCredentialId", "credential_not_found", "no credential with id \"nope\" in registryCredentials"],
      ["services[4].registryCredentialId", "spec_invalid", "image \"quay.io/x/q:1\" is also pulled for service \"d\" without a credential: one image is pulled once, with one credential"],
    ],
  ],
  [
    "one image named twice by an unnamed service",
    spec([tok("r1")], [{ image: "ghcr.io/x/y:1", registryCredentialId: "r1" }, svc("b", "ghcr.io/x/y:1"), { name: "c", image: "ghcr.io/x/y:1" }]),
    [
      ["services[0].name", "spec_invalid", "Invalid input: expected string, received undefined"],
      ["services[1].registryCredentialId", "spec_invalid", "image \"ghcr.io/x/y:1\" is also pulled for service \"services[0]\" with credential \"r1\": one image is pulled once, with one credential"],
      ["services[2].registryCredentialId", "spec_invalid", "image \"ghcr.io/x/y:1\" is also pulled for service \"services[0]\" with credential \"r1\": one image is pulled once, with one credential"],
    ],
  ],
  [
    "unknown keys at every level, wrong types",
    { bakeId: "bad id!", orgId: "", extra: 1, registryCredentials: [{ ...tok("rc"), color: "red", label: 5 }, 7, null], services: [{ ...svc("a b", "redis:7"), catalog: "yes", x: 1, y: 2 }, "s"] },
    [
      ["bakeId", "spec_invalid", "bakeId must be 1-128 letters, digits, '_', '.' or '-'"],
      ["orgId", "spec_invalid", "Too small: expected string to have >=1 characters"],
      ["registryCredentials[0].label", "spec_invalid", "Invalid input: expected string, received number"],
      ["registryCredentials[0].color", "spec_invalid", "unknown key \"color\""],
      ["registryCredentials[1]", "spec_invalid", "Invalid input: expected object, received number"],
      ["registryCredentials[2]", "spec_invalid", "Invalid input: expected object, received null"],
      ["services[0].name", "spec_invalid", "name must be 1-63 letters, digits, '_', '.' or '-'"],
      ["services[0].catalog", "spec_invalid", "Invalid input: expected boolean, received string"],
      ["services[0].x", "spec_invalid", "unknown key \"x\""],
      ["services[0].y", "spec_invalid", "unknown key \"y\""],
      ["services[1]", "spec_invalid", "Invalid input: expected object, received string"],
      ["extra", "spec_invalid", "unknown key \"extra\""],
    ],
  ],
  [
    "no services, credentials not a list",
    { bakeId: "bk", orgId: "o", registryCredentials: {}, services: [] },
    [
      ["registryCredentials", "spec_invalid", "Invalid input: expected array, received object"],
      ["services", "spec_invalid", "a bake needs at least one service"],
    ],
  ],
  [
    "missing everything",
    {},
    [
      ["bakeId", "spec_invalid", "Invalid input: expected string, received undefined"],
      ["orgId", "spec_invalid", "Invalid input: expected string, received undefined"],
      ["services", "spec_invalid", "Invalid input: expected array, received undefined"],
    ],
  ],
  [
    "the prose of many violations",
    spec([tok("rc", { registry: "https://ghcr.io" }), tok("rc")], [{ ...svc("api", "ghcr.io/acme/api:1", { registryCredentialId: "rc" }), extra: 1 }, svc("w", "quay.io/w:1", { registryCredentialId: "rc_missing" }), svc("api", "quay.io/x/y:1", { registryCredentialId: "rc" }), svc("cat", "redis:7", { catalog: true, registryCredentialId: "rc" })]),
    [
      ["services[0].extra", "spec_invalid", "unknown key \"extra\""],
      ["registryCredentials[0].registry", "spec_invalid", "registry \"https://ghcr.io\" must be a host only, without a scheme (e.g. ghcr.io, not https://ghcr.io)"],
      ["services[1].registryCredentialId", "credential_not_found", "no credential with id \"rc_missing\" in registryCredentials"],
      ["services[2].name", "spec_invalid", "duplicate service name \"api\""],
      ["services[2].image", "registry_mismatch", "image \"quay.io/x/y:1\" lives on quay.io but credential \"rc\" is for ghcr.io"],
      ["services[3].registryCredentialId", "spec_invalid", "registryCredentialId is only valid on custom services; catalog images come from their public registries"],
    ],
  ],
  [
    "a credential for host:443 is not one for the host when images are matched",
    spec([tok("do", { registry: "registry.digitalocean.com:443", username: "dop_v1_x" })], [svc("c", "registry.digitalocean.com/x/y:1", { registryCredentialId: "do" })]),
    [
      ["services[0].image", "registry_mismatch", "image \"registry.digitalocean.com/x/y:1\" lives on registry.digitalocean.com but credential \"do\" is for registry.digitalocean.com:443"],
    ],
  ],
];

describe("each violation's path, code and message", () => {
  it.each(CASES)("%s", (_, input, expected) => {
    expect(violations(input)).toEqual(expected);
  });

  it("root an array, null, a string", () => {
    expect(violations([])).toEqual([["", "spec_invalid", "Invalid input: expected object, received array"]]);
    expect(violations(null)).toEqual([["", "spec_invalid", "Invalid input: expected object, received null"]]);
    expect(violations("x")).toEqual([["", "spec_invalid", "Invalid input: expected object, received string"]]);
  });
});

describe("a valid spec's credentials and services", () => {
  it("carry the spec's fields and what validation derives: the parameter name, the ECR host, a username that is the secret", () => {
    const r = validateSpec(
      spec(
        [
          { ...tok("gh"), label: "GHCR" },
          { id: "ecr", type: "ecr", registry: ECR, username: "ignored" },
          tok("do", { registry: "registry.digitalocean.com", username: "dop_v1_x" }),
          tok("own", { registry: "quay.io", parameterName: PREFIX.slice(1) + "team/own" }),
        ],
        [
          svc("a", "ghcr.io/x/y:1", { registryCredentialId: "gh" }),
          svc("b", `${ECR}/w:1`, { registryCredentialId: "ecr" }),
          svc("c", "registry.digitalocean.com/x/y:1", { registryCredentialId: "do" }),
          svc("d", "quay.io/x/y:1", { registryCredentialId: "own" }),
          svc("e", "redis:7", { catalog: true }),
          svc("f", "quay.io/x/z:1", { catalog: false }),
        ],
      ),
      { ssmParameterPrefix: PREFIX },
    );
    if (!r.ok) throw new Error(JSON.stringify(r.violations));
    const gh = { id: "gh", type: "token", registry: "ghcr.io", label: "GHCR", username: "bot", parameterName: `${PREFIX}gh` };
    const ecr = { id: "ecr", type: "ecr", registry: ECR, ecr: { accountId: "123456789012", region: "us-east-1", fips: false, dualStack: false } };
    const dO = { id: "do", type: "token", registry: "registry.digitalocean.com", username: "dop_v1_x", usernameIsSecret: true, parameterName: `${PREFIX}do` };
    const own = { id: "own", type: "token", registry: "quay.io", username: "bot", parameterName: `${PREFIX}team/own` };
    expect(r.spec.credentials).toStrictEqual([gh, ecr, dO, own]);
    expect(r.spec.services.map(({ name, image, ref, credential }) => ({ name, image, canonical: ref.canonical, credential }))).toStrictEqual([
      { name: "a", image: "ghcr.io/x/y:1", canonical: "ghcr.io/x/y:1", credential: gh },
      { name: "b", image: `${ECR}/w:1`, canonical: `${ECR}/w:1`, credential: ecr },
      { name: "c", image: "registry.digitalocean.com/x/y:1", canonical: "registry.digitalocean.com/x/y:1", credential: dO },
      { name: "d", image: "quay.io/x/y:1", canonical: "quay.io/x/y:1", credential: own },
      { name: "e", image: "redis:7", canonical: "docker.io/library/redis:7", credential: undefined },
      { name: "f", image: "quay.io/x/z:1", canonical: "quay.io/x/z:1", credential: undefined },
    ]);
  });
});
