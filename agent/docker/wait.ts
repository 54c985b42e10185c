// docs/reference.md §3: a Docker socket that does not answer is retried for at most 30 s,
// then docker_unavailable. Used before a bake and before check-credential's login.
import type { Clock } from "../clock.ts";
import { AgentError } from "../errors/agent-error.ts";
import type { DockerPort } from "./port.ts";

/** docs/reference.md §3: how long a Docker socket that does not answer is retried. */
export const DOCKER_WAIT_MS = 30_000;
const DOCKER_PING_TIMEOUT_MS = 2000;

/** Waits for the daemon to answer /_ping, at most DOCKER_WAIT_MS. */
export async function waitForDocker(docker: DockerPort, clock: Clock, signal: AbortSignal, onWait?: (msg: string) => void): Promise<void> {
  const deadline = clock.now() + DOCKER_WAIT_MS;
  let last: unknown;
  let told = false;
  while (clock.now() < deadline) {
    try {
      await docker.ping(AbortSignal.any([signal, AbortSignal.timeout(DOCKER_PING_TIMEOUT_MS)]));
      return;
    } catch (err) {
      if (signal.aborted) throw err;
      last = err;
      if (!told) {
        onWait?.(`Docker is not answering (${(err as Error).message}); retrying for up to ${DOCKER_WAIT_MS / 1000} s`);
        told = true;
      }
      await clock.sleep(500, signal);
    }
  }
  throw new AgentError("docker_unavailable", `the Docker daemon did not answer within ${DOCKER_WAIT_MS / 1000} s: ${(last as Error)?.message ?? "no answer"}`);
}
