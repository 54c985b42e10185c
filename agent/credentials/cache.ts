// In-memory reuse of resolved credentials for the daemon (never on disk).
// Token secrets are reused for credentialCacheSeconds; ECR tokens until well
// before their expiresAt (as the ECS agent does) and never past it. An entry
// past its reuse time is never served, even when a refresh fails.
import type { Credential } from "../spec/schema.ts";
import type { RegistryAuth } from "./types.ts";

/** Refresh ECR tokens this long before they expire (ECS agent: ≥ 30 min). */
export const ECR_REFRESH_BEFORE_MS = 30 * 60_000;

export interface CredentialCache {
  get(cred: Credential, now: number): RegistryAuth | undefined;
  put(cred: Credential, auth: RegistryAuth, now: number): void;
  delete(cred: Credential): void;
}

/** The bake command's cache: nothing is kept beyond the bake. */
export const noCache: CredentialCache = {
  get: () => undefined,
  put: () => undefined,
  delete: () => undefined,
};

/** Identity of what is fetched: a changed spec must not be served an old secret. */
function key(c: Credential): string {
  return JSON.stringify([c.id, c.type, c.registry.toLowerCase(), c.username ?? "", c.parameterName ?? ""]);
}

/** How long an auth may be reused, from `now`. Pure, for the table test. */
export function reuseUntil(cred: Credential, auth: RegistryAuth, now: number, cacheSeconds: number): number {
  if (cred.type === "ecr" && auth.expiresAt !== undefined) {
    const lifetime = auth.expiresAt - now;
    return auth.expiresAt - Math.max(ECR_REFRESH_BEFORE_MS, lifetime / 4);
  }
  return now + cacheSeconds * 1000;
}

export class MemoryCredentialCache implements CredentialCache {
  private readonly entries = new Map<string, { auth: RegistryAuth; until: number }>();
  private readonly cacheSeconds: number;

  constructor(cacheSeconds: number) {
    this.cacheSeconds = cacheSeconds;
  }

  get(cred: Credential, now: number): RegistryAuth | undefined {
    const e = this.entries.get(key(cred));
    if (!e) return undefined;
    if (now >= e.until || (e.auth.expiresAt !== undefined && now >= e.auth.expiresAt)) {
      this.entries.delete(key(cred));
      return undefined;
    }
    return e.auth;
  }

  put(cred: Credential, auth: RegistryAuth, now: number): void {
    const until = reuseUntil(cred, auth, now, this.cacheSeconds);
    if (until > now) this.entries.set(key(cred), { auth, until });
  }

  delete(cred: Credential): void {
    this.entries.delete(key(cred));
  }
}
