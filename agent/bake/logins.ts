// A bake's registry logins: each credential is resolved once (it may be asked
// for early, so that AWS and the SDK's loading overlap Docker's own checks) and
// logged in once (POST /auth). The pull starts with the credential while its
// login runs; a failed login still fails the image and aborts its pull. A
// credential served from the daemon's cache that the login refuses may have
// been rotated: it is fetched once more and logged in again, the login settles
// with the new one, a pull begun with the old one starts again with it (unless
// the engine had already pulled), and pulls that start later use it.
import type { CredentialResolver, Resolved } from "../credentials/resolve.ts";
import type { RegistryAuth } from "../credentials/types.ts";
import { loginWithRetries, type LoginDeps } from "../docker/login.ts";
import { AgentError } from "../errors/agent-error.ts";
import type { Credential } from "../spec/schema.ts";
import type { BakeStep } from "./types.ts";

export interface LoginsDeps extends LoginDeps {
  resolver: CredentialResolver;
  step: (s: BakeStep) => void;
  signal: AbortSignal;
}

export interface PullAuth {
  /** The credential to pull with now: the one fetched anew once a login has renewed a rotated one. */
  readonly auth: RegistryAuth;
  /** Settles when the login did, with the credential that logged in (another than `auth` where the cached one was rotated); rejects with the login's error. */
  loggedIn: Promise<RegistryAuth>;
}

export class Logins {
  private readonly deps: LoginsDeps;
  private readonly resolving = new Map<string, Promise<Resolved>>();
  private readonly logins = new Map<string, Promise<RegistryAuth>>();
  private readonly secretUsernames = new Set<string>();
  /** Credentials a login renewed (fetched anew after the cached one was refused). */
  private readonly renewed = new Map<string, RegistryAuth>();

  constructor(deps: LoginsDeps) {
    this.deps = deps;
  }

  /** Whether the secret fetched for this credential was also its username (docs/reference.md §6 usernameIsSecret). */
  usernameWasSecret(credId: string): boolean {
    return this.secretUsernames.has(credId);
  }

  /** Starts fetching a credential now; its errors surface when it is used. */
  prefetch(cred: Credential): void {
    this.resolved(cred).catch(() => undefined);
  }

  async forPull(cred: Credential): Promise<PullAuth> {
    const r = await this.resolved(cred);
    const renewed = this.renewed;
    return {
      get auth() {
        return renewed.get(cred.id) ?? r.auth;
      },
      loggedIn: this.login(cred),
    };
  }

  /** The credential the agent's own registry requests use (signature lookups): one from the cache only once its login has confirmed or renewed it. */
  async forRegistry(cred: Credential): Promise<RegistryAuth> {
    const r = await this.resolved(cred);
    const loggedIn = this.login(cred);
    return r.cached ? loggedIn : r.auth;
  }

  private resolved(cred: Credential): Promise<Resolved> {
    let p = this.resolving.get(cred.id);
    if (!p) {
      this.deps.step({ kind: "credential", credential: cred, phase: "fetch" });
      p = this.deps.resolver.resolve(cred, this.deps.signal, (e, progress) =>
        this.deps.step({ kind: "credential-retry", credential: cred, error: e.toBody(), ...progress }),
      );
      p.then((r) => r.auth.username === r.auth.password && this.secretUsernames.add(cred.id)).catch(() => undefined);
      this.resolving.set(cred.id, p);
    }
    return p;
  }

  private login(cred: Credential): Promise<RegistryAuth> {
    let p = this.logins.get(cred.id);
    if (!p) {
      const { deps } = this;
      p = (async () => {
        let resolved = await this.resolved(cred);
        deps.step({ kind: "credential", credential: cred, phase: "login" });
        try {
          await loginWithRetries(resolved.auth, deps, deps.signal);
        } catch (err) {
          // A reused secret may have been rotated since: fetch it once more before failing.
          if (!(resolved.cached && err instanceof AgentError && err.code === "registry_auth_failed")) throw err;
          deps.resolver.invalidate(cred);
          resolved = await deps.resolver.resolve(cred, deps.signal);
          await loginWithRetries(resolved.auth, deps, deps.signal);
          // Pulls that start from now on use the new one.
          this.renewed.set(cred.id, resolved.auth);
        }
        deps.step({ kind: "credential", credential: cred, phase: "logged-in" });
        return resolved.auth;
      })();
      // Whoever pulls with it awaits it and reports its failure; an image skipped after the bake failed never does.
      p.catch(() => undefined);
      this.logins.set(cred.id, p);
    }
    return p;
  }
}
