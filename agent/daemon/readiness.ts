// docs/reference.md §8 /readyz: the Docker socket answers, AWS credentials are obtainable
// and (where the box uses SSM) the SSM endpoint takes a connection, and the state dir is writable. Each
// check is bounded in time; the AWS check has a budget of its own and says which
// endpoint failed (the instance metadata service's, or SSM's). An answer serves
// every caller for a few seconds: the route needs no token.
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { raceAbort } from "../abort.ts";
import type { Clock } from "../clock.ts";
import type { DockerPort } from "../docker/port.ts";

const CHECK_TIMEOUT_MS = 2000;
/** Credentials (the SDK waits up to 1 s per IMDS request), then a connection to SSM: one short budget for both. */
export const AWS_CHECK_TIMEOUT_MS = 4000;
/**
 * How long one answer of /readyz is reused. Anyone who reaches the port may call
 * it, and each fresh answer pings Docker, checks AWS (IMDS, a connection to SSM) and
 * writes a file; probes every few seconds still see a change within this long.
 */
export const READINESS_CACHE_MS = 3000;

export interface Check {
  ok: boolean;
  reason?: string;
}

export interface Readiness {
  status: "ready" | "not_ready";
  checks: { docker: Check; aws: Check; stateDir: Check };
}

/** A check that says why, within `ms`: one that honours its signal says in its own words what did not answer in time. */
async function bounded(name: string, fn: (signal: AbortSignal) => Promise<void>, ms = CHECK_TIMEOUT_MS): Promise<Check> {
  const signal = AbortSignal.timeout(ms);
  // A moment longer for the check's own words, in case it does not honour its signal.
  const backstop = AbortSignal.timeout(ms + 500);
  try {
    await raceAbort(fn(signal), backstop);
    return { ok: true };
  } catch (err) {
    const kind = (err as Error | undefined)?.name;
    const timedOut = backstop.aborted || (signal.aborted && (err === signal.reason || kind === "AbortError" || kind === "TimeoutError"));
    if (timedOut) return { ok: false, reason: `${name} did not answer within ${ms} ms` };
    return { ok: false, reason: (err as Error).message || String(err) };
  }
}

export async function checkReadiness(deps: { docker: DockerPort; aws: (signal: AbortSignal) => Promise<void>; stateDir: string }): Promise<Readiness> {
  const [docker, aws, stateDir] = await Promise.all([
    bounded("Docker", (s) => deps.docker.ping(s)),
    bounded("AWS", (s) => deps.aws(s), AWS_CHECK_TIMEOUT_MS),
    bounded("state dir", async () => {
      await mkdir(deps.stateDir, { recursive: true, mode: 0o700 });
      const probe = path.join(deps.stateDir, `.ready-${randomBytes(4).toString("hex")}`);
      await writeFile(probe, "");
      await rm(probe, { force: true });
    }),
  ]);
  return { status: docker.ok && aws.ok && stateDir.ok ? "ready" : "not_ready", checks: { docker, aws, stateDir } };
}

/**
 * `check` behind a short cache: callers at the same time share one check, and its
 * answer, ready or not, is reused for READINESS_CACHE_MS after it ends.
 */
export function readinessProbe(check: () => Promise<Readiness>, clock: Pick<Clock, "now">): () => Promise<Readiness> {
  let last: { at: number; answer: Readiness } | undefined;
  let pending: Promise<Readiness> | undefined;
  return () => {
    if (last && clock.now() - last.at < READINESS_CACHE_MS) return Promise.resolve(last.answer);
    pending ??= check()
      .then((answer) => {
        last = { at: clock.now(), answer };
        return answer;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}
