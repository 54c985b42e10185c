import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseEcrHost } from "../spec/registry.ts";
import { ecrClientSettings, imdsEndpoint, resolvedEndpoint } from "./aws-clients.ts";
import { ECRClient, SSMClient } from "./aws-sdk.ts";

// The endpoints the SDK itself would ask, from clients built as the agent builds
// them; no request is sent. A configured AWS_ENDPOINT_URL_* would win over the
// service's rules, so the test runs without one.
const CONFIGURED = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_SSM", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"];
const saved: Record<string, string | undefined> = {};
beforeEach(() => {
  for (const k of CONFIGURED) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
});
afterEach(() => {
  for (const k of CONFIGURED) if (saved[k] === undefined) delete process.env[k];
  else process.env[k] = saved[k];
});

describe("the ECR API endpoint for a registry host", () => {
  it.each([
    ["123456789012.dkr.ecr.us-east-1.amazonaws.com", "https://api.ecr.us-east-1.amazonaws.com"],
    ["123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", "https://api.ecr-fips.us-gov-west-1.amazonaws.com"],
    ["123456789012.dkr-ecr.eu-west-1.on.aws", "https://ecr.eu-west-1.api.aws"],
    ["123456789012.dkr-ecr-fips.us-east-2.on.aws", "https://ecr-fips.us-east-2.api.aws"],
    ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "https://api.ecr.cn-north-1.amazonaws.com.cn"],
  ])("%s → %s", async (host, endpoint) => {
    const ecr = parseEcrHost(host)!;
    expect(await resolvedEndpoint(new ECRClient(ecrClientSettings(ecr, {})))).toBe(endpoint);
  });

  it("is the AWS_ENDPOINT_URL_ECR value when one is set, FIPS or not (the SDK refuses FIPS beside a custom endpoint)", async () => {
    const env = { AWS_ENDPOINT_URL_ECR: "http://127.0.0.1:4566" };
    Object.assign(process.env, env);
    expect(await resolvedEndpoint(new ECRClient(ecrClientSettings(parseEcrHost("123456789012.dkr-ecr-fips.us-east-2.on.aws")!, env)))).toBe("http://127.0.0.1:4566");
  });
});

describe("the SSM endpoint", () => {
  it("is the region's, or AWS_ENDPOINT_URL_SSM's", async () => {
    expect(await resolvedEndpoint(new SSMClient({ region: "eu-central-1" }))).toBe("https://ssm.eu-central-1.amazonaws.com");
    process.env["AWS_ENDPOINT_URL_SSM"] = "https://vpce-0abc.ssm.eu-central-1.vpce.amazonaws.com";
    expect(await resolvedEndpoint(new SSMClient({ region: "eu-central-1" }))).toBe("https://vpce-0abc.ssm.eu-central-1.vpce.amazonaws.com");
    // Shown without a user or password someone put in the URL.
    process.env["AWS_ENDPOINT_URL_SSM"] = "https://user:pw@ssm.example.internal:8443";
    expect(await resolvedEndpoint(new SSMClient({ region: "eu-central-1" }))).toBe("https://ssm.example.internal:8443");
  });
});

describe("the instance metadata service's endpoint", () => {
  it("is AWS_EC2_METADATA_SERVICE_ENDPOINT, else the IPv4 or IPv6 address of the mode", () => {
    expect(imdsEndpoint({})).toBe("http://169.254.169.254");
    expect(imdsEndpoint({ AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: "IPv6" })).toBe("http://[fd00:ec2::254]");
    expect(imdsEndpoint({ AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://127.0.0.1:1338/" })).toBe("http://127.0.0.1:1338");
    expect(imdsEndpoint({ AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://user:pw@127.0.0.1:1338/" })).toBe("http://127.0.0.1:1338");
  });
});
