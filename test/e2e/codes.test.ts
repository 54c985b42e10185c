// Every SPEC §5 code a box can meet, produced by a real bake against the real
// stack: the exact code, the words of Docker or AWS, the hint, and the retry
// behaviour (a retryable error retried pullRetries times, a permanent one
// attempted once). The codes that need a registry to refuse in its own words
// live in registries.test.ts; the spec's own codes in cli.test.ts and bake.test.ts.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { pushRandomImage } from "../stack/images.ts";
import { newBox, parseJsonResult, PREFIX, secretLeaks, uid, type Box } from "./harness.ts";

const stack = inject("stack");
const aws = new AwsStandIn();
const { ghcr, quay, stall } = stack.registries;
const boxes: Box[] = [];
const box = (opts: Parameters<typeof newBox>[2] = {}) => {
  const b = newBox(stack, aws, opts);
  boxes.push(b);
  return b;
};
const gh = { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" };
const spec = (services: Record<string, unknown>[]) => ({ bakeId: `bk_${uid()}`, orgId: "o", registryCredentials: [gh], services });

beforeAll(async () => {
  await aws.start();
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
});
afterAll(async () => {
  for (const b of boxes) b.cleanup();
  await aws.stop();
});

describe("docker_unavailable", () => {
  it("on the CLI: a socket that does not answer is retried for 30 s, then the bake fails with the connection's words", async () => {
    const b = box({ config: { dockerSocket: `/tmp/sbx-no-docker-${uid()}.sock` } });
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "a", image: "quay.io/acme/a:1" }])), "--json"]);
    expect(r.code).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e).toMatchObject({ code: "docker_unavailable", retryable: true });
    expect(e.message).toMatch(/did not answer within 30 s: connect ENOENT/);
    expect(e.hint).toMatch(/systemctl status docker/);
    expect(r.stderr).toMatch(/Docker is not answering .*retrying for up to 30 s/);
    expect(r.ms).toBeGreaterThanOrEqual(29_000);
    expect(r.ms).toBeLessThan(45_000);
  }, 60_000);
});

describe("aws_credentials_unavailable", () => {
  it("IMDS gone: retried pullRetries times inside the bake, then reported with the SDK's words", async () => {
    const b = box({ config: { pullRetries: 2 } });
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "a", image: "ghcr.io/acme/a:1", registryCredentialId: "rc_gh" }]))], {
      // Nothing listens there: the instance has no metadata service.
      env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://127.0.0.1:9" },
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/error: service a \(ghcr\.io\/acme\/a:1\): aws_credentials_unavailable \(retryable\)/);
    expect(r.stdout).toMatch(/reported: ssm:GetParameter \/slothbox\/registry-credentials\/rc_gh: \w*(Credentials)?ProviderError: /);
    expect(r.stdout).toMatch(/hint: .*instance profile/);
    expect(r.stdout.match(/credential rc_gh: aws_credentials_unavailable .*; retrying, \d+ retr(y|ies) left/g)).toHaveLength(2);
    expect(secretLeaks(ghcr.password!, b, r)).toEqual([]);
  });
});

describe("pull_timeout", () => {
  it("on the total timeout: a pull that takes longer than pullTimeoutSeconds, retried, then reported", async () => {
    const repo = `acme/total-${uid()}`;
    await pushRandomImage(quay.push, repo, "1", { layers: 1, bytes: 512 * 1024 });
    const b = box({ config: { pullTimeoutSeconds: 2, pullInactivityTimeoutSeconds: 60, pullRetries: 1 } });
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "s", image: `${stall.host}/${repo}:1` }]))]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/pull_timeout \(pulling stall\.registry\.test\/acme\/total-\w+:1 took longer than the total timeout of 2 s\); retrying, 1 retry left/);
    expect(r.stdout).toMatch(/error: service s \(.*\): pull_timeout \(retryable\)\n {2}reported: pulling .* took longer than the total timeout of 2 s/);
    expect(r.ms).toBeGreaterThanOrEqual(4000);
    expect(r.ms).toBeLessThan(20_000);
  });
});
