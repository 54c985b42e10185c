import { describe, expect, it } from "vitest";
import { MAX_SECRETS, Scrubber } from "../errors/scrub.ts";
import type { Credential } from "../spec/schema.ts";
import { delay, FakeAws, fakeClock } from "../../test/unit/fakes.ts";
import { MemoryCredentialCache } from "./cache.ts";
import { REQUEST_TIMEOUT_MS } from "./aws-clients.ts";
import { CredentialResolver, NETWORK_BUDGET_MS } from "./resolve.ts";
import { AwsCallError } from "./types.ts";

const PREFIX = "/slothbox/registry-credentials/";
const gh: Credential = { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot", parameterName: `${PREFIX}rc_gh` };

function resolver(opts: { cache?: MemoryCredentialCache } = {}) {
  const aws = new FakeAws();
  aws.parameters.set(`${PREFIX}rc_gh`, { type: "SecureString", value: "ghp_secret" });
  const scrubber = new Scrubber();
  const r = new CredentialResolver({ aws: () => aws, scrubber, clock: fakeClock(), random: () => 0.5, ssmParameterPrefix: PREFIX, ...opts });
  return { aws, scrubber, r };
}

describe("CredentialResolver", () => {
  it("makes one AWS call for concurrent callers of one credential", async () => {
    const { aws, r } = resolver();
    aws.before = () => delay(10);
    const signal = new AbortController().signal;
    const [a, b, c] = await Promise.all([r.resolve(gh, signal), r.resolve(gh, signal), r.resolve(gh, signal)]);
    expect(aws.calls).toEqual([`ssm ${PREFIX}rc_gh`]);
    expect(a.auth).toEqual({ username: "acme-bot", password: "ghp_secret", serverAddress: "ghcr.io" });
    expect(b).toBe(a);
    expect(c).toBe(a);
  });

  it("registers the secret with the scrubber the moment it arrives", async () => {
    const { r, scrubber } = resolver();
    await r.resolve(gh, new AbortController().signal);
    expect(scrubber.scrub("token ghp_secret")).toBe("token [REDACTED]");
  });

  it("serves the daemon's cache without an AWS call, and fetches again once invalidated", async () => {
    const cache = new MemoryCredentialCache(300);
    const first = resolver({ cache });
    await first.r.resolve(gh, new AbortController().signal);
    const second = resolver({ cache });
    const hit = await second.r.resolve(gh, new AbortController().signal);
    expect(hit.cached).toBe(true);
    expect(second.aws.calls).toEqual([]);
    second.r.invalidate(gh);
    const again = await second.r.resolve(gh, new AbortController().signal);
    expect(again.cached).toBe(false);
    expect(second.aws.calls).toHaveLength(1);
  });

  it("registers a secret served from the cache again, so that secrets fetched since cannot have pushed it out of the scrubber", async () => {
    const cache = new MemoryCredentialCache(300);
    const first = resolver({ cache });
    await first.r.resolve(gh, new AbortController().signal);
    const second = resolver({ cache });
    for (let i = 0; i < MAX_SECRETS; i++) second.scrubber.add(`other-secret-${String(i).padStart(6, "0")}-xxxxxxxx`);
    const hit = await second.r.resolve(gh, new AbortController().signal);
    expect(hit.cached).toBe(true);
    expect(second.scrubber.scrub("token ghp_secret")).toBe("token [REDACTED]");
  });

  it("refuses a parameter outside the prefix without calling AWS, even if the spec check were bypassed", async () => {
    const { aws, r } = resolver();
    await expect(r.resolve({ ...gh, parameterName: "/prod/db/password" }, new AbortController().signal)).rejects.toMatchObject({ code: "spec_invalid" });
    expect(aws.calls).toEqual([]);
  });

  it("retries an endpoint that does not answer for the network budget, naming it, with the SDK's attempts added up", async () => {
    const aws = new FakeAws();
    const clock = fakeClock(0);
    const r2 = new CredentialResolver({ aws: () => aws, scrubber: new Scrubber(), clock, ssmParameterPrefix: PREFIX, random: () => 0.5 });
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED", $metadata: {} });
    aws.before = async () => {
      throw new AwsCallError(refused, "http://127.0.0.1:9", 1);
    };
    const seen: number[] = [];
    const err = await r2.resolve(gh, new AbortController().signal, (_e, p) => seen.push(p.attempts)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "aws_unreachable", message: `ssm:GetParameter ${PREFIX}rc_gh: http://127.0.0.1:9 did not answer: connect ECONNREFUSED 127.0.0.1:9` });
    expect((err as { attempts: number }).attempts).toBe(aws.calls.length);
    expect(seen).toEqual(aws.calls.slice(1).map((_c, i) => i + 1));
    // The last attempt starts when one bounded by the request timeout still ends within the budget, not before and not after.
    expect(clock.now()).toBe(NETWORK_BUDGET_MS - REQUEST_TIMEOUT_MS);
  });

  it("leaves network failures to the SDK where its own retry mode (awsRetryStrategy standard, adaptive) retried them already: one attempt, not two layers of retries", async () => {
    const aws = new FakeAws();
    const clock = fakeClock(0);
    const r2 = new CredentialResolver({ aws: () => aws, scrubber: new Scrubber(), clock, random: () => 0.5, ssmParameterPrefix: PREFIX, sdkRetriesNetwork: true });
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED", $metadata: { attempts: 10 } });
    aws.before = async () => {
      throw new AwsCallError(refused, "http://127.0.0.1:9", 10);
    };
    const err = await r2.resolve(gh, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "aws_unreachable", attempts: 10, message: expect.stringContaining("did not answer: connect ECONNREFUSED 127.0.0.1:9") });
    expect(aws.calls).toHaveLength(1);
    expect(clock.now()).toBe(0);
  });

  it("leaves throttling to the SDK: a throttled call that ran out of awsMaxWaitSeconds is reported at once, with the SDK's attempts", async () => {
    const { aws, r } = resolver();
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400, attempts: 7 } });
    aws.before = async () => {
      throw new AwsCallError(throttled, "https://ssm.us-east-1.amazonaws.com", 7);
    };
    await expect(r.resolve(gh, new AbortController().signal)).rejects.toMatchObject({ code: "aws_throttled", attempts: 7, message: expect.stringContaining("ThrottlingException: Rate exceeded") });
    expect(aws.calls).toHaveLength(1);
  });

  it("names the instance metadata service when the role's credentials could not be obtained", async () => {
    const { aws, r } = resolver();
    const imds = Object.assign(new Error("TimeoutError from instance metadata service"), { name: "ProviderError" });
    aws.before = async () => {
      throw new AwsCallError(imds, "http://169.254.169.254", 1);
    };
    await expect(r.resolve(gh, new AbortController().signal)).rejects.toMatchObject({
      code: "aws_credentials_unavailable",
      message: `ssm:GetParameter ${PREFIX}rc_gh: no credentials for the instance role from http://169.254.169.254: ProviderError: TimeoutError from instance metadata service`,
    });
  });

  it("does not retry AWS's own refusal of the role's credentials (a signature it computes differently): an answer, not a network failure", async () => {
    const { aws, r } = resolver();
    const mismatch = Object.assign(new Error("The request signature we calculated does not match the signature you provided."), { name: "InvalidSignatureException", $metadata: { httpStatusCode: 400 } });
    aws.before = async () => {
      throw new AwsCallError(mismatch, "https://ssm.us-east-1.amazonaws.com", 1);
    };
    await expect(r.resolve(gh, new AbortController().signal)).rejects.toMatchObject({ code: "aws_credentials_unavailable", attempts: 1 });
    expect(aws.calls).toHaveLength(1);
  });
});
