// Resolves a spec credential to what Docker needs: token → SSM, ecr → ECR.
// One AWS call per credential per bake however many services share it
// (concurrent callers share the pending promise). Each budget has one owner
// (docs/reference.md §5): throttling is retried inside the SDK until awsMaxWaitSeconds
// (retry-strategy.ts); an AWS endpoint or the instance metadata service that
// does not answer (no name, no connection, a timeout, TLS, a 5xx) is retried
// here, with the SDK's short backoff, for at most NETWORK_BUDGET_MS in all: each
// attempt is bounded by the clients' own timeouts (aws-clients.ts), and none
// starts that could end after the budget. Under the SDK's own retry modes
// (awsRetryStrategy standard, adaptive), which retry those failures inside
// each call, the endpoint's are not retried here again. The error then
// says what failed, where, and after how many attempts.
import type { Clock, Random } from "../clock.ts";
import { AgentError } from "../errors/agent-error.ts";
import type { Scrubber } from "../errors/scrub.ts";
import type { Credential } from "../spec/schema.ts";
import { REQUEST_TIMEOUT_MS } from "./aws-clients.ts";
import { isProviderError } from "./aws-error.ts";
import { noCache, type CredentialCache } from "./cache.ts";
import { fetchEcrCredential } from "./ecr.ts";
import { MAX_ATTEMPTS, retryDelayMs } from "./retry-strategy.ts";
import { fetchTokenCredential } from "./ssm.ts";
import type { AwsPorts, RegistryAuth } from "./types.ts";

/** docs/reference.md §5: network failures reaching AWS (IMDS included) are retried for at most 60 s in all. */
export const NETWORK_BUDGET_MS = 60_000;
/**
 * Failures that may pass by themselves within the minute: an endpoint that did
 * not answer as a service does, and the instance role's credentials not
 * obtained (IMDS). AWS's own refusal of the credentials it was sent (an expired
 * token, a signature it computes differently) is an answer, and final.
 */
function retried(err: AgentError, sdkRetriesNetwork: boolean): boolean {
  if (err.code === "aws_unreachable") return !sdkRetriesNetwork;
  if (err.code !== "aws_credentials_unavailable") return false;
  const answered = (err.cause as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode !== undefined;
  return isProviderError(err.cause) || !answered;
}

export interface ResolverDeps {
  aws: () => AwsPorts;
  scrubber: Scrubber;
  clock: Clock;
  ssmParameterPrefix: string;
  /** Randomness of the backoff (full jitter); tests fix it. */
  random: Random;
  /**
   * The SDK's own retry modes (awsRetryStrategy `standard`, `adaptive`) retry network
   * failures and 5xx inside each call: then they are not retried here again.
   */
  sdkRetriesNetwork?: boolean;
  /** Reuse across bakes (the daemon); the bake command keeps nothing. */
  cache?: CredentialCache;
  /** Observes each AWS fetch (metrics, output). */
  onFetch?: (cred: Credential, outcome: "ok" | "error", ms: number) => void;
  onCacheHit?: (cred: Credential) => void;
}

/** Hears of each failure that is retried: how many attempts were made so far, and how much of the budget is left. */
export type RetryListener = (err: AgentError, progress: { attempts: number; budgetLeftMs: number }) => void;

export interface Resolved {
  auth: RegistryAuth;
  /** Served from the cache: a login refusal may mean it was rotated since. */
  cached: boolean;
}

/** What an auth holds that is secret, as it was registered when fetched: the password, and ECR's token (base64 of user:password). */
function secretsOf(cred: Credential, auth: RegistryAuth): string[] {
  return cred.type === "ecr" ? [Buffer.from(`${auth.username}:${auth.password}`).toString("base64"), auth.password] : [auth.password];
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
      // Registered again: other secrets fetched since it was may have pushed it out of the bounded scrubber.
      for (const secret of secretsOf(cred, hit)) this.deps.scrubber.add(secret);
      this.deps.onCacheHit?.(cred);
      return { auth: hit, cached: true };
    }
    const auth = await this.fetch(cred, signal, onRetry);
    cache.put(cred, auth, this.deps.clock.now());
    return { auth, cached: false };
  }

  private async fetch(cred: Credential, signal: AbortSignal, onRetry?: RetryListener): Promise<RegistryAuth> {
    const { deps } = this;
    const started = deps.clock.now();
    const once = () =>
      cred.type === "ecr"
        ? fetchEcrCredential(cred, deps.aws(), deps.scrubber, deps.clock.now(), signal)
        : fetchTokenCredential(cred, deps.ssmParameterPrefix, deps.aws(), deps.scrubber, signal);
    let attempts = 0;
    for (let retry = 1; ; retry++) {
      try {
        const auth = await once();
        deps.onFetch?.(cred, "ok", deps.clock.now() - started);
        return auth;
      } catch (err) {
        if (signal.aborted || !(err instanceof AgentError)) {
          deps.onFetch?.(cred, "error", deps.clock.now() - started);
          throw err;
        }
        // The SDK counts its own attempts at a throttled call; a fake's failure is one.
        attempts += err.attempts ?? 1;
        if (err.attempts !== undefined || attempts > 1) err.attempts = attempts;
        const left = NETWORK_BUDGET_MS - (deps.clock.now() - started);
        // Another attempt only while it can end within the budget, however long it takes (the clients' request bound).
        const startable = left - REQUEST_TIMEOUT_MS;
        if (!retried(err, deps.sdkRetriesNetwork ?? false) || startable <= 0 || retry >= MAX_ATTEMPTS) {
          deps.onFetch?.(cred, "error", deps.clock.now() - started);
          throw err;
        }
        onRetry?.(err, { attempts, budgetLeftMs: left });
        // A wait that would pass the last moment an attempt may start is cut short: that attempt is made then.
        await deps.clock.sleep(Math.min(startable, retryDelayMs("TRANSIENT", retry, deps.random())), signal);
      }
    }
  }
}
