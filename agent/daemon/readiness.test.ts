import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fakeClock, FakeDocker, hangUntil } from "../../test/unit/fakes.ts";
import { AWS_CHECK_TIMEOUT_MS, checkReadiness, READINESS_CACHE_MS, readinessProbe } from "./readiness.ts";

const stateDir = mkdtempSync(path.join(os.tmpdir(), "sbx-ready-"));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

/** A Docker that counts its pings and AWS credentials that count their checks, each taking a while. */
function counted(opts: { dockerDown?: boolean } = {}) {
  const calls = { docker: 0, aws: 0 };
  const docker = new FakeDocker();
  docker.ping = async () => {
    calls.docker++;
    await new Promise((r) => setTimeout(r, 20));
    if (opts.dockerDown) throw new Error("connect ENOENT /var/run/docker.sock");
  };
  const clock = fakeClock();
  const probe = readinessProbe(
    () =>
      checkReadiness({
        docker,
        aws: async () => {
          calls.aws++;
        },
        stateDir,
      }),
    clock,
  );
  return { calls, clock, probe };
}

describe("readinessProbe (/readyz answers anyone: it must not ping Docker and AWS on every call)", () => {
  it("answers many callers at once with one check", async () => {
    const { calls, probe } = counted();
    const answers = await Promise.all(Array.from({ length: 50 }, () => probe()));
    expect(answers.every((a) => a.status === "ready")).toBe(true);
    expect(calls).toEqual({ docker: 1, aws: 1 });
  });

  it("reuses an answer for READINESS_CACHE_MS, then checks again", async () => {
    const { calls, clock, probe } = counted();
    await probe();
    clock.t += READINESS_CACHE_MS - 1;
    await probe();
    await probe();
    expect(calls).toEqual({ docker: 1, aws: 1 });
    clock.t += 2;
    await probe();
    expect(calls).toEqual({ docker: 2, aws: 2 });
  });

  it("reuses a not-ready answer too: a failing check is the costly one", async () => {
    const { calls, clock, probe } = counted({ dockerDown: true });
    const first = await probe();
    expect(first).toMatchObject({ status: "not_ready", checks: { docker: { ok: false, reason: "connect ENOENT /var/run/docker.sock" } } });
    for (let i = 0; i < 20; i++) expect(await probe()).toEqual(first);
    expect(calls.docker).toBe(1);
    clock.t += READINESS_CACHE_MS;
    await probe();
    expect(calls.docker).toBe(2);
  });

  it("keeps the cache short: a few seconds at most", () => {
    expect(READINESS_CACHE_MS).toBeGreaterThanOrEqual(1000);
    expect(READINESS_CACHE_MS).toBeLessThanOrEqual(5000);
  });
});

describe("/readyz's AWS check", () => {
  it("reports in its own words which endpoint did not answer within its budget", async () => {
    const aws = (signal: AbortSignal) =>
      new Promise<void>((_resolve, reject) =>
        signal.addEventListener("abort", () => reject(new Error("SSM endpoint https://ssm.us-east-1.amazonaws.com: no answer in time")), { once: true }),
      );
    const r = await checkReadiness({ docker: new FakeDocker(), aws, stateDir });
    expect(r.status).toBe("not_ready");
    expect(r.checks.aws).toEqual({ ok: false, reason: "SSM endpoint https://ssm.us-east-1.amazonaws.com: no answer in time" });
    expect(r.checks.docker).toEqual({ ok: true });
  });

  it("still answers, with a timeout of its own, when the check does not honour its signal", async () => {
    const r = await checkReadiness({ docker: new FakeDocker(), aws: () => new Promise<void>(() => undefined), stateDir });
    expect(r.checks.aws).toEqual({ ok: false, reason: `AWS did not answer within ${AWS_CHECK_TIMEOUT_MS} ms` });
  }, 15_000);

  it("calls a Docker ping that was aborted a timeout, not the abort's words", async () => {
    const docker = new FakeDocker();
    docker.ping = (signal) => hangUntil(signal);
    const r = await checkReadiness({ docker, aws: async () => undefined, stateDir });
    expect(r.checks.docker).toEqual({ ok: false, reason: "Docker did not answer within 2000 ms" });
    expect(r.checks.aws).toEqual({ ok: true });
  });
});
