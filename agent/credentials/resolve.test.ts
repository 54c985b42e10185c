import { describe, expect, it } from "vitest";
import { MAX_SECRETS, Scrubber } from "../errors/scrub.ts";
import type { Credential } from "../spec/schema.ts";
import { delay, FakeAws, fakeClock } from "../testing/fakes.ts";
import { MemoryCredentialCache } from "./cache.ts";
import { CredentialResolver } from "./resolve.ts";

const PREFIX = "/slothbox/registry-credentials/";
const gh: Credential = { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot", parameterName: `${PREFIX}rc_gh` };

function resolver(opts: { cache?: MemoryCredentialCache } = {}) {
  const aws = new FakeAws();
  aws.parameters.set(`${PREFIX}rc_gh`, { type: "SecureString", value: "ghp_secret" });
  const scrubber = new Scrubber();
  const r = new CredentialResolver({ aws: () => aws, scrubber, clock: fakeClock(), ssmParameterPrefix: PREFIX, awsMaxWaitSeconds: 30, retries: 0, ...opts });
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
});
