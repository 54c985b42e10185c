// docs/reference.md §8 /readyz: the Docker socket answers, AWS credentials are obtainable,
// and the state dir is writable. Each check is bounded in time.
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { raceAbort } from "../abort.ts";
import type { DockerPort } from "../docker/port.ts";

const CHECK_TIMEOUT_MS = 2000;

export interface Check {
  ok: boolean;
  reason?: string;
}

export interface Readiness {
  status: "ready" | "not_ready";
  checks: { docker: Check; aws: Check; stateDir: Check };
}

async function bounded(name: string, fn: (signal: AbortSignal) => Promise<void>): Promise<Check> {
  const signal = AbortSignal.timeout(CHECK_TIMEOUT_MS);
  try {
    await raceAbort(fn(signal), signal);
    return { ok: true };
  } catch (err) {
    if (signal.aborted) return { ok: false, reason: `${name} did not answer within ${CHECK_TIMEOUT_MS} ms` };
    return { ok: false, reason: (err as Error).message || String(err) };
  }
}

export async function checkReadiness(deps: { docker: DockerPort; awsCredentials: () => Promise<void>; stateDir: string }): Promise<Readiness> {
  const [docker, aws, stateDir] = await Promise.all([
    bounded("Docker", (s) => deps.docker.ping(s)),
    bounded("AWS credentials", () => deps.awsCredentials()),
    bounded("state dir", async () => {
      await mkdir(deps.stateDir, { recursive: true, mode: 0o700 });
      const probe = path.join(deps.stateDir, `.ready-${randomBytes(4).toString("hex")}`);
      await writeFile(probe, "");
      await rm(probe, { force: true });
    }),
  ]);
  return { status: docker.ok && aws.ok && stateDir.ok ? "ready" : "not_ready", checks: { docker, aws, stateDir } };
}
