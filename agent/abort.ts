// Cancellation for calls that do not stop on their own when a signal aborts
// (dockerode's ping and inspect take no signal; the AWS SDK sleeps between
// retries regardless): the caller stops waiting, and the late result is dropped.

export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
