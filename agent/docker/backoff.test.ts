// The pull's and the login's retries keep p-retry's schedule they replaced: the
// same count, the same bounds of each wait, only retryable AgentErrors retried,
// waited on the clock port and drawn from the Random port.
import { describe, expect, it } from "vitest";
import { AgentError } from "../errors/agent-error.ts";
import { Scrubber } from "../errors/scrub.ts";
import { parseReference } from "../spec/reference.ts";
import { FakeDocker, fakeClock } from "../../test/unit/fakes.ts";
import { backoffMs, withBackoff } from "./backoff.ts";
import { loginWithRetries } from "./login.ts";
import { DockerHttpError } from "./port.ts";
import { pullImage } from "./pull.ts";

/** A clock whose sleeps pass at once and are remembered. */
function recordingClock() {
  const c = fakeClock(0);
  const waits: number[] = [];
  return { clock: { now: c.now, sleep: (ms: number, signal?: AbortSignal) => (waits.push(ms), c.sleep(ms, signal)) }, waits };
}

const unreachable = () => new AgentError("registry_unreachable", "received unexpected HTTP status: 502 Bad Gateway");

describe("backoffMs", () => {
  it("draws each wait in [1, 2) × min × 2^(retry − 1), at most max", () => {
    const b = (r: number) => ({ random: () => r, minMs: 1000, maxMs: 20_000 });
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, b(0)))).toEqual([1000, 2000, 4000, 8000, 16_000, 20_000]);
    expect([1, 2, 3].map((n) => backoffMs(n, b(0.999)))).toEqual([1999, 3998, 7996]);
    expect(backoffMs(30, { random: () => 0.5, minMs: 1000, maxMs: Infinity })).toBe(1.5 * 1000 * 2 ** 29);
  });
});

describe("withBackoff", () => {
  it("tries 1 + retries times, telling each retry its attempt and the retries left, waiting by the clock", async () => {
    const { clock, waits } = recordingClock();
    const told: [number, number][] = [];
    let calls = 0;
    const run = withBackoff(async () => (calls++, Promise.reject(unreachable())), { clock, random: () => 0.5, retries: 3, minMs: 1000, maxMs: 20_000 }, new AbortController().signal, (_e, a, left) => told.push([a, left]));
    await expect(run).rejects.toMatchObject({ code: "registry_unreachable" });
    expect(calls).toBe(4);
    expect(told).toEqual([[1, 3], [2, 2], [3, 1]]);
    expect(waits).toEqual([1500, 3000, 6000]);
  });

  it("does not retry an error that is not retryable, nor one that is not an AgentError", async () => {
    const { clock, waits } = recordingClock();
    for (const err of [new AgentError("digest_mismatch", "no"), new Error("bug")]) {
      let calls = 0;
      await expect(withBackoff(async () => (calls++, Promise.reject(err)), { clock, random: () => 0, retries: 3, minMs: 1, maxMs: 1 }, new AbortController().signal)).rejects.toBe(err);
      expect(calls).toBe(1);
    }
    expect(waits).toEqual([]);
  });

  it("ends with the signal's reason when aborted during a wait", async () => {
    const ctl = new AbortController();
    const reason = new AgentError("interrupted", "SIGTERM");
    const clock = { now: () => 0, sleep: async () => ctl.abort(reason) };
    await expect(withBackoff(async () => Promise.reject(unreachable()), { clock, random: () => 0, retries: 3, minMs: 1, maxMs: 1 }, ctl.signal)).rejects.toBe(reason);
  });
});

describe("the pull's and the login's retries", () => {
  it("a pull records its attempts and waits 1 s then 2 s (× jitter), at most 20 s", async () => {
    const docker = new FakeDocker().plan("ghcr.io/acme/api:1", ...Array.from({ length: 7 }, () => ({ kind: "http" as const, status: 502, message: "received unexpected HTTP status: 502 Bad Gateway" })));
    const { clock, waits } = recordingClock();
    const retried: number[] = [];
    const deps = { docker, clock, random: () => 0, scrubber: new Scrubber(), inactivityTimeoutMs: 30_000, totalTimeoutMs: 60_000, retries: 6, onRetry: (_e: AgentError, a: number) => retried.push(a) };
    const e = await pullImage(parseReference("ghcr.io/acme/api:1"), undefined, deps, new AbortController().signal).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "registry_unreachable", attempts: 7 });
    expect(docker.pulls()).toHaveLength(7);
    expect(retried).toEqual([1, 2, 3, 4, 5, 6]);
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000, 20_000]);
  });

  it("a login retries a 5xx pullRetries times, without a cap on the wait, and records no attempts", async () => {
    const docker = new FakeDocker();
    let logins = 0;
    docker.loginPlan = async () => {
      logins++;
      throw new DockerHttpError(500, "Get \"https://ghcr.io/v2/\": received unexpected HTTP status: 503 Service Unavailable");
    };
    const { clock, waits } = recordingClock();
    const auth = { username: "u", password: "p", serverAddress: "ghcr.io" };
    const e = await loginWithRetries(auth, { docker, scrubber: new Scrubber(), clock, random: () => 0, retries: 2 }, new AbortController().signal).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "registry_unreachable" });
    expect((e as AgentError).attempts).toBeUndefined();
    expect(logins).toBe(3);
    expect(waits).toEqual([1000, 2000]);
  });
});
