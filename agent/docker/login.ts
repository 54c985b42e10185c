// POST /auth with the credential, retried like a pull when the failure is
// retryable (registry unreachable, 5xx); a refusal fails at once.
import pRetry, { AbortError } from "p-retry";
import type { RegistryAuth } from "../credentials/types.ts";
import type { Scrubber } from "../errors/scrub.ts";
import type { DockerPort } from "./port.ts";
import { dockerFailure } from "./failure.ts";

const LOGIN_RETRY_MIN_MS = 1000;

export async function loginWithRetries(docker: DockerPort, auth: RegistryAuth, retries: number, scrubber: Scrubber, signal: AbortSignal): Promise<void> {
  await pRetry(
    async () => {
      try {
        await docker.login(auth, signal);
      } catch (err) {
        if (signal.aborted) throw new AbortError(err as Error);
        const failure = dockerFailure(err, { authenticated: true, login: true }, scrubber);
        if (!failure.retryable) throw new AbortError(failure);
        throw failure;
      }
    },
    { retries, minTimeout: LOGIN_RETRY_MIN_MS, randomize: true, signal },
  ).catch((err: unknown) => {
    throw err instanceof AbortError ? ((err as { originalError?: unknown }).originalError ?? err) : err;
  });
}
