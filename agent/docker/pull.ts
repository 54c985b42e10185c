// One image pull as the agent does it: POST /images/create with X-Registry-Auth,
// an inactivity timeout (no bytes from the daemon) and a total timeout, both
// aborting the request; Docker's errors classified with its text kept (secrets
// scrubbed); retryable failures retried with exponential backoff and jitter;
// then inspect for the image ID and repo digest, and a pinned digest verified.
import { raceAbort } from "../abort.ts";
import type { Clock, Random } from "../clock.ts";
import type { RegistryAuth } from "../credentials/types.ts";
import { AgentError } from "../errors/agent-error.ts";
import type { Scrubber } from "../errors/scrub.ts";
import { repoDigestName, type ImageReference } from "../spec/reference.ts";
import { REGISTRY_BACKOFF, withCountedBackoff } from "./backoff.ts";
import { dockerFailure, engineFailure } from "./failure.ts";
import type { DockerPort, ImageInfo } from "./port.ts";
import { consumePullStream } from "./pull-stream.ts";
import type { Progress } from "./types.ts";
import { DOCKER_WAIT_MS } from "./wait.ts";


export interface PullDeps {
  docker: DockerPort;
  /** The waits between attempts and their jitter (the timeouts are the engine's silence in real time: setTimeout). */
  clock: Clock;
  random: Random;
  scrubber: Scrubber;
  inactivityTimeoutMs: number;
  totalTimeoutMs: number;
  retries: number;
  onProgress?: (p: Progress) => void;
  onRetry?: (err: AgentError, attempt: number, retriesLeft: number) => void;
  /** The engine has ended the pull's stream with success: its part is done, and only the inspect is left. */
  onPulled?: () => void;
}

/** An image as the engine recorded it (not state/pulled.ts's PulledImage, the agent's own record of what it pulled). */
export interface RecordedImage {
  imageId: string;
  /** Repository digest Docker records in RepoDigests for this repository. */
  digest: string;
}

/** One pull; resolves with the digest the engine says it pulled, where it says one. */
async function attempt(ref: ImageReference, auth: RegistryAuth | undefined, deps: PullDeps, signal: AbortSignal): Promise<string | undefined> {
  const ctl = new AbortController();
  let timedOut: AgentError | undefined;
  const abortWith = (e: AgentError) => {
    timedOut ??= e;
    ctl.abort(e);
  };
  const onOuterAbort = () => ctl.abort(signal.reason);
  signal.addEventListener("abort", onOuterAbort, { once: true });
  const totalTimer = setTimeout(
    () => abortWith(new AgentError("pull_timeout", `pulling ${ref.canonical} took longer than the total timeout of ${deps.totalTimeoutMs / 1000} s`)),
    deps.totalTimeoutMs,
  );
  let idleTimer: NodeJS.Timeout | undefined;
  /** Every layer waits for a download slot other pulls hold: only the total timeout bounds that. */
  let queued = false;
  const armIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (queued) return armIdle();
      abortWith(new AgentError("pull_timeout", `pulling ${ref.canonical} made no progress for ${deps.inactivityTimeoutMs / 1000} s (inactivity timeout)`));
    }, deps.inactivityTimeoutMs);
  };
  armIdle();
  try {
    const stream = await deps.docker.pull({
      fromImage: ref.name,
      tag: ref.digest ?? ref.tag ?? "latest",
      ...(auth ? { auth } : {}),
      signal: ctl.signal,
    });
    return (await raceAbort(consumePullStream(stream, { onActivity: armIdle, onQueued: (q) => (queued = q), ...(deps.onProgress ? { onProgress: deps.onProgress } : {}) }), ctl.signal)).digest;
  } catch (err) {
    if (timedOut) throw timedOut;
    if (signal.aborted) throw signal.reason;
    throw dockerFailure(err, { authenticated: auth !== undefined }, deps.scrubber);
  } finally {
    clearTimeout(totalTimer);
    clearTimeout(idleTimer);
    signal.removeEventListener("abort", onOuterAbort);
  }
}

export async function pullImage(ref: ImageReference, auth: RegistryAuth | undefined, deps: PullDeps, signal: AbortSignal): Promise<RecordedImage> {
  const backoff = { clock: deps.clock, random: deps.random, retries: deps.retries, ...REGISTRY_BACKOFF };
  const pulledDigest = await withCountedBackoff(() => attempt(ref, auth, deps, signal), backoff, signal, deps.onRetry);
  deps.onPulled?.();
  return verify(ref, deps, signal, pulledDigest);
}

export interface InspectDeps {
  docker: DockerPort;
  scrubber: Scrubber;
  /** How long the daemon may leave an inspect unanswered; default docs/reference.md §3's 30 s for a silent socket. */
  inspectTimeoutMs?: number;
}

/** The inspect on the same socket as the pull: a daemon restarting or silent there is docker_unavailable, never the agent's bug. */
async function inspect(name: string, deps: InspectDeps, signal: AbortSignal): Promise<ImageInfo | undefined> {
  const limitMs = deps.inspectTimeoutMs ?? DOCKER_WAIT_MS;
  const silent = AbortSignal.timeout(limitMs);
  try {
    return await deps.docker.inspectImage(name, AbortSignal.any([signal, silent]));
  } catch (err) {
    if (signal.aborted) throw err;
    if (silent.aborted) throw new AgentError("docker_unavailable", `the Docker daemon did not answer the inspect of ${name} within ${limitMs / 1000} s`, { cause: err });
    throw engineFailure(err, deps.scrubber);
  }
}

/** After a pull: the image ID and the repository digest the engine recorded. */
export async function verify(ref: ImageReference, deps: InspectDeps, signal: AbortSignal, pulledDigest?: string): Promise<RecordedImage> {
  const info = await inspect(ref.digest ? `${ref.name}@${ref.digest}` : ref.canonical, deps, signal);
  if (!info) throw new AgentError("internal", `the pull of ${ref.canonical} finished but Docker has no such image`);
  return recorded(ref, info, pulledDigest);
}

/**
 * The image ID and the repository digest — the one the engine said it pulled, where it
 * said one (an image pulled by an index digest and by a platform digest has both in RepoDigests).
 */
function recorded(ref: ImageReference, info: ImageInfo, pulledDigest?: string): RecordedImage {
  const mine = info.repoDigests.filter((d) => repoDigestName(d) === ref.name).map((d) => d.slice(d.indexOf("@") + 1));
  if (ref.digest) {
    if (!mine.includes(ref.digest)) {
      throw new AgentError("digest_mismatch", `pulled ${ref.canonical}, but Docker records ${mine.join(", ") || "no digest"} for ${ref.name}`);
    }
    return { imageId: info.id, digest: ref.digest };
  }
  const digest = pulledDigest !== undefined && mine.includes(pulledDigest) ? pulledDigest : mine[0];
  if (!digest) throw new AgentError("internal", `Docker recorded no repository digest for ${ref.canonical}`);
  return { imageId: info.id, digest };
}

/** A pinned image Docker already has: nothing to pull. */
export async function presentPinned(ref: ImageReference, deps: InspectDeps, signal: AbortSignal): Promise<RecordedImage | undefined> {
  if (!ref.digest) return undefined;
  const info = await inspect(`${ref.name}@${ref.digest}`, deps, signal);
  return info ? recorded(ref, info) : undefined;
}
