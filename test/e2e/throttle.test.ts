// Throttling as a fleet meets it: the stand-in's token buckets hold their rate
// and burst; a throttled bake still finishes with a bounded number of calls;
// awsMaxWaitSeconds ends it with aws_throttled and AWS's words.
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { pushRandomImage } from "../stack/images.ts";
import { newBox, parseJsonResult, PREFIX, secretLeaks, uid, type Box } from "./harness.ts";

const stack = inject("stack");
const aws = new AwsStandIn();
const { ghcr } = stack.registries;
const boxes: Box[] = [];
const box = (config: Record<string, unknown> = {}) => {
  const b = newBox(stack, aws, { config });
  boxes.push(b);
  return b;
};

beforeAll(async () => {
  await aws.start();
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
});
afterAll(async () => {
  for (const b of boxes) b.cleanup();
  await aws.stop();
});

async function ssmClient(): Promise<SSMClient> {
  // A client that takes the role credentials from the stand-in's IMDS and never retries.
  const { fromInstanceMetadata } = await import("@aws-sdk/credential-providers");
  return new SSMClient({
    region: "us-east-1",
    endpoint: aws.url,
    maxAttempts: 1,
    credentials: async () => {
      process.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = aws.url;
      return fromInstanceMetadata()();
    },
  });
}

describe("the stand-in's token bucket", () => {
  it("lets the burst through at once, then about `rate` calls a second", async () => {
    const ssm = await ssmClient();
    aws.clearFaults();
    aws.throttle("ssm:GetParameter", 5, 3);
    const started = Date.now();
    const outcomes: boolean[] = [];
    // 40 calls spread evenly over 2 s: 3 (burst) + 5/s × 2 s ≈ 13 may pass.
    for (let i = 0; i < 40; i++) {
      const due = started + i * 50;
      await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
      outcomes.push(
        await ssm.send(new GetParameterCommand({ Name: `${PREFIX}rc_gh`, WithDecryption: true })).then(
          () => true,
          (e: Error) => {
            expect(e.name).toBe("ThrottlingException");
            expect(e.message).toBe("Rate exceeded");
            return false;
          },
        ),
      );
    }
    const elapsed = (Date.now() - started) / 1000;
    const passed = outcomes.filter(Boolean).length;
    const expected = 3 + 5 * elapsed;
    expect(outcomes.slice(0, 3)).toEqual([true, true, true]);
    expect(passed).toBeGreaterThanOrEqual(Math.floor(expected) - 2);
    expect(passed).toBeLessThanOrEqual(Math.ceil(expected) + 1);
    aws.clearFaults();
  });
});

describe("the agent under throttling", () => {
  it("finishes a bake whose SSM call is throttled, with one successful call and few attempts", async () => {
    const img = await pushRandomImage(ghcr.push, `acme/thr-${uid()}`, "1");
    aws.clearFaults();
    // Another box just took the only token: this box's first call is throttled.
    aws.throttle("ssm:GetParameter", 0.5, 1);
    const ssm = await ssmClient();
    await ssm.send(new GetParameterCommand({ Name: `${PREFIX}rc_gh`, WithDecryption: true }));
    const before = aws.callsTo("ssm:GetParameter").length;
    const b = box();
    const s = { bakeId: `bk_${uid()}`, orgId: "o", registryCredentials: [{ id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" }], services: [{ name: "a", image: img.reference, registryCredentialId: "rc_gh" }] };
    const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const calls = aws.callsTo("ssm:GetParameter").slice(before);
    expect(calls.filter((c) => c.outcome === "ok")).toHaveLength(1);
    expect(calls[0]!.outcome).toBe("ThrottlingException");
    expect(calls.length).toBeLessThanOrEqual(3);
    expect(secretLeaks(ghcr.password!, b, r)).toEqual([]);
    aws.clearFaults();
  });

  it("keeps trying until awsMaxWaitSeconds, the last attempt at the deadline, then fails with aws_throttled and AWS's message", async () => {
    aws.clearFaults();
    aws.fault({ api: "ssm:GetParameter", kind: "throttle" });
    const before = aws.callsTo("ssm:GetParameter").length;
    // 3 s is shorter than the first throttled wait can be (2–6 s): the agent must still try again, at the deadline.
    const b = box({ awsMaxWaitSeconds: 3 });
    const s = { bakeId: `bk_${uid()}`, orgId: "o", registryCredentials: [{ id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" }], services: [{ name: "a", image: "ghcr.io/acme/never:1", registryCredentialId: "rc_gh" }] };
    const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"]);
    aws.clearFaults();
    expect(r.code).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e).toMatchObject({ code: "aws_throttled", retryable: true });
    expect(e.message).toContain("ThrottlingException: Rate exceeded");
    const calls = aws.callsTo("ssm:GetParameter").slice(before);
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(calls.map((c) => c.outcome)).toEqual(calls.map(() => "throttle"));
    const span = calls.at(-1)!.at - calls[0]!.at;
    expect(span).toBeGreaterThanOrEqual(2900);
    expect(span).toBeLessThanOrEqual(3500);
    expect(r.ms).toBeLessThan(12_000);
    expect(secretLeaks(ghcr.password!, b, r)).toEqual([]);
  });
});
