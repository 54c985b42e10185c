// Resolves a spec credential to what Docker needs: token → SSM, ecr → ECR.
// One AWS call per credential per bake however many services share it
// (concurrent callers share the pending promise), bounded by awsMaxWaitSeconds.
// AWS credentials that cannot be obtained right now (IMDS unreachable, a 5xx)
// are retryable (docs/reference.md §5): retried `retries` times with backoff before they are
// reported. Throttling is retried inside the SDK (retry-strategy.ts).
import pRetry from "p-retry";
import type { Clock } from "../clock.ts";
import { AgentError } from "../errors/agent-error.ts";
import type { Scrubber } from "../errors/scrub.ts";
import type { Credential } from "../spec/schema.ts";
import { noCache, type CredentialCache } from "./cache.ts";
import { fetchEcrCredential } from "./ecr.ts";
import { fetchTokenCredential } from "./ssm.ts";
import type { AwsPorts, RegistryAuth } from "./types.ts";

const DEADLINE_GRACE_MS = 5000;
/** First retry of an unobtainable AWS credential after ~1 s, doubling: an IMDS blip passes. */
const RETRY_MIN_MS = 1000;

export interface ResolverDeps {
  aws: () => AwsPorts;
  scrubber: Scrubber;
  clock: Clock;
  ssmParameterPrefix: string;
  awsMaxWaitSeconds: number;
  /** Retries of aws_credentials_unavailable after the first attempt (pullRetries). */
  retries: number;
  /** First backoff; tests shorten it. */
  retryMinMs?: number;
  /** Reuse across bakes (the daemon); the bake command keeps nothing. */
  cache?: CredentialCache;
  /** Observes each AWS fetch (metrics, output). */
  onFetch?: (cred: Credential, outcome: "ok" | "error", ms: number) => void;
  onCacheHit?: (cred: Credential) => void;
}

export type RetryListener = (err: AgentError, retriesLeft: number) => void;

export interface Resolved {
  auth: RegistryAuth;
  /** Served from the cache: a login refusal may mean it was rotated since. */
  cached: boolean;
}

export class CredentialResolver {
  private readonly pending = new Map<string, Promise<Resolved>>();
  private readonly deps: ResolverDeps;

  constructor(deps: ResolverDeps) {
    this.deps = deps;
  }

  /** `onRetry` hears of each retry of an unobtainable AWS credential (the first caller's, when calls are shared). */
  resolve(cred: Credential, signal: AbortSignal, onRetry?: RetryListener): Promise<Resolved> {
    let p = this.pending.get(cred.id);
    if (!p) {
      p = this.lookup(cred, signal, onRetry);
      this.pending.set(cred.id, p);
    }
    return p;
  }

  /** Forgets a credential the registry refused, so the next resolve fetches it anew. */
  invalidate(cred: Credential): void {
    this.pending.delete(cred.id);
    (this.deps.cache ?? noCache).delete(cred);
  }

  private async lookup(cred: Credential, signal: AbortSignal, onRetry?: RetryListener): Promise<Resolved> {
    const cache = this.deps.cache ?? noCache;
    const hit = cache.get(cred, this.deps.clock.now());
    if (hit) {
      this.deps.onCacheHit?.(cred);
      return { auth: hit, cached: true };
    }
    const auth = await this.fetch(cred, signal, onRetry);
    cache.put(cred, auth, this.deps.clock.now());
    return { auth, cached: false };
  }

  private async fetch(cred: Credential, signal: AbortSignal, onRetry?: RetryListener): Promise<RegistryAuth> {
    const { deps } = this;
    // The retry strategy stops at awsMaxWaitSeconds with AWS's own error; this only
    // ends a call that hangs past it.
    const deadline = AbortSignal.timeout(deps.awsMaxWaitSeconds * 1000 + DEADLINE_GRACE_MS);
    const combined = AbortSignal.any([signal, deadline]);
    const started = deps.clock.now();
    const once = () =>
      cred.type === "ecr"
        ? fetchEcrCredential(cred, deps.aws().getEcrToken, deps.scrubber, deps.clock.now(), combined)
        : fetchTokenCredential(cred, deps.ssmParameterPrefix, deps.aws().getParameter, deps.scrubber, combined);
    try {
      const auth = await pRetry(once, {
        retries: deps.retries,
        minTimeout: deps.retryMinMs ?? RETRY_MIN_MS,
        factor: 2,
        randomize: true,
        maxRetryTime: deps.awsMaxWaitSeconds * 1000,
        signal: combined,
        shouldRetry: ({ error }) => error instanceof AgentError && error.code === "aws_credentials_unavailable",
        onFailedAttempt: ({ error, retriesLeft }) => {
          if (error instanceof AgentError && error.code === "aws_credentials_unavailable" && retriesLeft > 0) onRetry?.(error, retriesLeft);
        },
      });
      deps.onFetch?.(cred, "ok", deps.clock.now() - started);
      return auth;
    } catch (err) {
      deps.onFetch?.(cred, "error", deps.clock.now() - started);
      if (deadline.aborted && !signal.aborted) {
        throw new AgentError(
          "aws_throttled",
          `obtaining credential ${cred.id} took longer than awsMaxWaitSeconds (${deps.awsMaxWaitSeconds} s)${err instanceof Error ? `: ${err.message}` : ""}`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}
