import { describe, expect, it } from "vitest";
import { hostProblem, normalizeRegistry, parseEcrHost, serverAddress } from "./registry.ts";

describe("hostProblem", () => {
  it.each(["ghcr.io", "docker.io", "registry-1.docker.io", "localhost:5000", "registry.gitlab.com", "acme.azurecr.io", "10.0.0.1:443"])(
    "accepts %s",
    (h) => expect(hostProblem(h)).toBeUndefined(),
  );
  it.each([
    ["https://ghcr.io", /scheme/],
    ["ghcr.io/acme", /path/],
    ["user:pw@ghcr.io", /credentials/],
    ["ghcr .io", /whitespace/],
    ["", /empty/],
    ["ghcr.io:99999", /port/],
    ["-bad.example", /valid host/],
  ])("refuses %j", (h, why) => expect(hostProblem(h)).toMatch(why));
});

describe("normalizeRegistry and serverAddress", () => {
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
