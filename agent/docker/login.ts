// POST /auth with the credential, retried like a pull when the failure is
// retryable (registry unreachable, 5xx); a refusal fails at once.
import type { Clock, Random } from "../clock.ts";
import type { RegistryAuth } from "../credentials/types.ts";
import type { Scrubber } from "../errors/scrub.ts";
import { withBackoff } from "./backoff.ts";
import type { DockerPort } from "./port.ts";
import { dockerFailure } from "./failure.ts";

const LOGIN_RETRY_MIN_MS = 1000;

export interface LoginDeps {
  docker: DockerPort;
  scrubber: Scrubber;
  clock: Clock;
  random: Random;
  /** Retries after the first attempt. */
  retries: number;
}

export async function loginWithRetries(auth: RegistryAuth, deps: LoginDeps, signal: AbortSignal): Promise<void> {
  const backoff = { clock: deps.clock, random: deps.random, retries: deps.retries, minMs: LOGIN_RETRY_MIN_MS, maxMs: Infinity };
  await withBackoff(
    async () => {
      try {
        await deps.docker.login(auth, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        throw dockerFailure(err, { authenticated: true, login: true }, deps.scrubber);
      }
    },
    backoff,
    signal,
  );
}
