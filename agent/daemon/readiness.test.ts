import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FakeDocker, hangUntil } from "../testing/fakes.ts";
import { AWS_CHECK_TIMEOUT_MS, checkReadiness } from "./readiness.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-ready-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("/readyz's AWS check", () => {
  it("reports in its own words which endpoint did not answer within its budget", async () => {
    const aws = (signal: AbortSignal) =>
      new Promise<void>((_resolve, reject) =>
        signal.addEventListener("abort", () => reject(new Error("SSM endpoint https://ssm.us-east-1.amazonaws.com: no answer in time")), { once: true }),
      );
    const r = await checkReadiness({ docker: new FakeDocker(), aws, stateDir: dir });
    expect(r.status).toBe("not_ready");
    expect(r.checks.aws).toEqual({ ok: false, reason: "SSM endpoint https://ssm.us-east-1.amazonaws.com: no answer in time" });
    expect(r.checks.docker).toEqual({ ok: true });
  });

  it("still answers, with a timeout of its own, when the check does not honour its signal", async () => {
    const r = await checkReadiness({ docker: new FakeDocker(), aws: () => new Promise<void>(() => undefined), stateDir: dir });
    expect(r.checks.aws).toEqual({ ok: false, reason: `AWS did not answer within ${AWS_CHECK_TIMEOUT_MS} ms` });
  }, 15_000);

  it("calls a Docker ping that was aborted a timeout, not the abort's words", async () => {
    const docker = new FakeDocker();
    docker.ping = (signal) => hangUntil(signal);
    const r = await checkReadiness({ docker, aws: async () => undefined, stateDir: dir });
    expect(r.checks.docker).toEqual({ ok: false, reason: "Docker did not answer within 2000 ms" });
    expect(r.checks.aws).toEqual({ ok: true });
  });
});
