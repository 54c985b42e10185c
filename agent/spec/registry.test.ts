import { describe, expect, it } from "vitest";
import { hostProblem, normalizeRegistry, parseEcrHost, serverAddress } from "./registry.ts";

describe("hostProblem", () => {
  it.each([
    "ghcr.io",
    "docker.io",
    "registry-1.docker.io",
    "localhost:5000",
    "registry.gitlab.com",
    "acme.azurecr.io",
    "10.0.0.1:443",
    "[::1]:5000",
    "[fc00:1:2:3:4:5:6:7]",
    "[2001:db8::]:443",
  ])("accepts %s", (h) => expect(hostProblem(h)).toBeUndefined());
  it.each([
    ["https://ghcr.io", /scheme/],
    ["ghcr.io/acme", /path/],
    ["user:pw@ghcr.io", /credentials/],
    ["ghcr .io", /whitespace/],
    ["", /empty/],
    ["ghcr.io:99999", /port/],
    ["[::1]:0", /port/],
    ["-bad.example", /valid host/],
    ["fd00::1", /IPv6 address without brackets/],
    ["[fe80::1%eth0]:5000", /valid host/],
    ["[2001:db8:3:4::192.0.2.33]", /valid host/],
  ])("refuses %j", (h, why) => expect(hostProblem(h)).toMatch(why));

  // distribution/reference regexp_test.go@00a09fa3 TestDomainRegexp: the same host grammar as image references
  // (reference.test.ts runs these hosts in front of a repository). A port Docker cannot dial is refused on top.
  it.each<[string, boolean]>([
    ["test.com", true],
    ["test.com:10304", true],
    ["test.com:http", false],
    ["localhost", true],
    ["localhost:8080", true],
    ["a", true],
    ["a.b", true],
    ["ab.cd.com", true],
    ["a-b.com", true],
    ["-ab.com", false],
    ["ab-.com", false],
    ["ab.c-om", true],
    ["ab.-com", false],
    ["ab.com-", false],
    ["0101.com", true],
    ["001a.com", true],
    ["b.gbc.io:443", true],
    ["b.gbc.io", true],
    ["xn--n3h.com", true],
    ["Asdf.com", true],
    ["192.168.1.1:75050", true],
    ["192.168.1.1:750050", true],
    ["[fd00:1:2::3]:75050", true],
    ["[fd00:1:2::3]75050", false],
    ["[fd00:1:2::3]::75050", false],
    ["[fd00:1:2::3%eth0]:75050", false],
    ["[fd00123123123]:75050", true],
    ["[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050", true],
    ["[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505", true],
    ["fd00:1:2::3:75050", false],
  ])("%s is in the host grammar: %s", (host, valid) => {
    const problem = hostProblem(host);
    if (!valid) expect(problem).toMatch(/valid host|IPv6/);
    else if (/:[0-9]{6,}$|:(?:6553[6-9]|655[4-9][0-9]|65[6-9][0-9]{2}|6[6-9][0-9]{3}|[7-9][0-9]{4})$/.test(host)) expect(problem).toMatch(/port outside 1-65535/);
    else expect(problem).toBeUndefined();
  });
});

describe("normalizeRegistry and serverAddress", () => {
  it("lower-cases IPv6 literal hosts like any other", () => {
    expect(normalizeRegistry("[FC00::1]:5000")).toBe("[fc00::1]:5000");
    expect(serverAddress("[::1]:5000")).toBe("[::1]:5000");
  });
  it("folds Docker Hub's three names into one registry with Docker's server address", () => {
    for (const h of ["docker.io", "index.docker.io", "registry-1.docker.io", "Registry-1.Docker.IO"]) {
      expect(normalizeRegistry(h)).toBe("docker.io");
      expect(serverAddress(h)).toBe("https://index.docker.io/v1/");
    }
  });
  it("keeps other registries apart, ports included", () => {
    expect(normalizeRegistry("gcr.io")).not.toBe(normalizeRegistry("us.gcr.io"));
    expect(serverAddress("ghcr.io")).toBe("ghcr.io");
    expect(serverAddress("localhost:5000")).toBe("localhost:5000");
  });
});

describe("parseEcrHost", () => {
  it.each([
    ["123456789012.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", false, false],
    ["123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1", true, false],
    ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1", false, false],
    ["123456789012.dkr-ecr.eu-west-1.on.aws", "eu-west-1", false, true],
    ["123456789012.dkr-ecr-fips.us-east-2.on.aws", "us-east-2", true, true],
    ["123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn", "cn-northwest-1", false, true],
    ["123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1", false, false],
    ["123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "us-iso-east-1", false, false],
    ["123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1", false, false],
    ["123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", "eu-isoe-west-1", false, false],
    ["123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", "us-isof-south-1", false, false],
  ])("%s → %s", (host, region, fips, dualStack) => {
    expect(parseEcrHost(host)).toEqual({ accountId: "123456789012", region, fips, dualStack });
  });
  it.each([
    "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
    "evil.example/123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "12345678901.dkr.ecr.us-east-1.amazonaws.com",
    "123456789012.dkr.ecr.us-east-1.amazonaws.co",
    "public.ecr.aws",
    "123456789012.dkr.ecr..amazonaws.com",
    "x123456789012.dkr.ecr.us-east-1.amazonaws.com",
  ])("refuses the look-alike %s", (host) => expect(parseEcrHost(host)).toBeUndefined());
});

describe("the registries the platform supports", () => {
  it.each([
    ["docker.io", "docker.io", "https://index.docker.io/v1/"],
    ["index.docker.io", "docker.io", "https://index.docker.io/v1/"],
    ["registry-1.docker.io", "docker.io", "https://index.docker.io/v1/"],
    ["ghcr.io", "ghcr.io", "ghcr.io"],
    ["gcr.io", "gcr.io", "gcr.io"],
    ["us.gcr.io", "us.gcr.io", "us.gcr.io"],
    ["eu.gcr.io", "eu.gcr.io", "eu.gcr.io"],
    ["asia.gcr.io", "asia.gcr.io", "asia.gcr.io"],
    ["europe-west1-docker.pkg.dev", "europe-west1-docker.pkg.dev", "europe-west1-docker.pkg.dev"],
    ["us-docker.pkg.dev", "us-docker.pkg.dev", "us-docker.pkg.dev"],
    ["quay.io", "quay.io", "quay.io"],
    ["registry.digitalocean.com", "registry.digitalocean.com", "registry.digitalocean.com"],
    ["acme.azurecr.io", "acme.azurecr.io", "acme.azurecr.io"],
    ["registry.gitlab.com", "registry.gitlab.com", "registry.gitlab.com"],
    ["123456789012.dkr.ecr.eu-central-1.amazonaws.com", "123456789012.dkr.ecr.eu-central-1.amazonaws.com", "123456789012.dkr.ecr.eu-central-1.amazonaws.com"],
  ])("%s is a valid credential host, registry %s, login server %s", (host, registry, server) => {
    expect(hostProblem(host)).toBeUndefined();
    expect(normalizeRegistry(host)).toBe(registry);
    expect(serverAddress(host)).toBe(server);
  });

  it.each([
    ["docker.io.evil.example", "docker.io"],
    ["evil-docker.io", "docker.io"],
    ["ghcr.io.evil.example", "ghcr.io"],
    ["gcr.io.evil.example", "gcr.io"],
    ["us.gcr.io", "gcr.io"],
    ["quay.io.evil.example", "quay.io"],
    ["registry.digitalocean.com.evil.example", "registry.digitalocean.com"],
    ["acme.azurecr.io.evil.example", "acme.azurecr.io"],
    ["other.azurecr.io", "acme.azurecr.io"],
    ["registry.gitlab.com.evil.example", "registry.gitlab.com"],
  ])("treats the look-alike %s as another registry than %s", (lookalike, real) => {
    expect(normalizeRegistry(lookalike)).not.toBe(normalizeRegistry(real));
    expect(serverAddress(lookalike)).not.toBe("https://index.docker.io/v1/");
  });
});
