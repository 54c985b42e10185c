// A registry token server as Docker Hub, GHCR, Quay, GitLab, GCR and ACR run
// them: the registry answers 401 with `WWW-Authenticate: Bearer realm=…,
// service=…,scope=…`; this server checks the client's Basic credentials for that
// service and issues a JWT (RS256, the signing certificate in its `x5c` header)
// granting only what the user may do. Wrong passwords and refused repositories
// get each service's own answer (refusals.ts). Tests revoke a credential after
// its login passed:
//   POST /__token/revoke?service=S&repo=R[&count=N]   the next N pull tokens asked for R on S
//        are refused with the service's `revoked` answer, while a login (no repository scope) passes
import { createSign, randomBytes, X509Certificate } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Answer, TokenRefusals } from "./refusals.ts";

export interface ServiceUsers {
  /** user → password */
  users: Record<string, string>;
  /** Repositories (path prefixes ending in `/`, or exact names) anyone may pull. */
  publicRepos: string[];
  /** Repositories (prefixes or names) each user may pull. */
  readable: Record<string, string[]>;
  /** How this service's token endpoint refuses, in its own words (refusals.ts). */
  refusals: TokenRefusals;
}

export const TOKEN_ISSUER = "slothbox-test-token-server";

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

function matches(repo: string, patterns: string[]): boolean {
  return patterns.some((p) => (p.endsWith("/") ? repo.startsWith(p) : repo === p));
}

export class TokenServer {
  url = "";
  readonly requests: { service: string; account?: string; scope: string; status: number }[] = [];
  private readonly server: http.Server;
  private readonly services = new Map<string, ServiceUsers>();
  private readonly signingKeyPem: string;
  private readonly x5c: string;
  private readonly admin: { user: string; password: string };
  /** `service repo` → how many more pull tokens to refuse as revoked. */
  private readonly revoked = new Map<string, number>();

  constructor(opts: { signingKeyPem: string; signingCertPem: string; admin: { user: string; password: string } }) {
    this.signingKeyPem = opts.signingKeyPem;
    this.x5c = new X509Certificate(opts.signingCertPem).raw.toString("base64");
    this.admin = opts.admin;
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on("connection", (s) => s.setNoDelay(true));
  }

  addService(service: string, users: ServiceUsers): void {
    this.services.set(service, users);
  }

  async start(host = "127.0.0.1"): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, host, resolve));
    this.url = `http://${host}:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://token");
    if (req.method === "POST" && url.pathname === "/__token/revoke") {
      this.revoked.set(`${url.searchParams.get("service")} ${url.searchParams.get("repo")}`, Number(url.searchParams.get("count") ?? "1"));
      res.writeHead(204).end();
      return;
    }
    const service = url.searchParams.get("service") ?? "";
    const scopes = url.searchParams.getAll("scope");
    const reply = (status: number, body: unknown) => {
      this.requests.push({ service, scope: scopes.join(" "), status, ...(account ? { account } : {}) });
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    const refuse = (a: Answer) => {
      this.requests.push({ service, scope: scopes.join(" "), status: a.status, ...(account ? { account } : {}) });
      res.writeHead(a.status, a.headers ?? { "content-type": "application/json" }).end(a.body);
    };
    let account: string | undefined;
    const svc = this.services.get(service);
    if (url.pathname !== "/token" || !svc) return reply(404, { errors: [{ code: "NOT_FOUND", message: `unknown service ${service}` }] });
    const auth = req.headers["authorization"];
    let admin = false;
    if (auth?.startsWith("Basic ")) {
      const decoded = Buffer.from(auth.slice(6), "base64").toString("utf8");
      const i = decoded.indexOf(":");
      const user = decoded.slice(0, i);
      const password = decoded.slice(i + 1);
      admin = user === this.admin.user && password === this.admin.password;
      if (!admin && svc.users[user] !== password) return refuse(svc.refusals.badCredentials);
      account = user;
    }
    const access: { type: string; name: string; actions: string[] }[] = [];
    for (const scope of scopes) {
      const [type, name, actions] = scope.split(":");
      if (type !== "repository" || !name || !actions) continue;
      const wanted = actions.split(",");
      const left = account && !admin ? (this.revoked.get(`${service} ${name}`) ?? 0) : 0;
      if (left > 0) {
        this.revoked.set(`${service} ${name}`, left - 1);
        return refuse(svc.refusals.revoked);
      }
      let granted: string[] = [];
      if (admin) granted = wanted;
      else if (matches(name, svc.publicRepos) || (account && matches(name, svc.readable[account] ?? []))) granted = wanted.filter((a) => a === "pull");
      // Registries that refuse at the token endpoint do so here; the others issue a token with
      // reduced scope (the token spec's rule), and the registry refuses the request it is used for.
      if (account && !admin && granted.length === 0 && svc.refusals.denied) return refuse(svc.refusals.denied(name));
      access.push({ type, name, actions: granted });
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "RS256", x5c: [this.x5c] };
    const claims = { iss: TOKEN_ISSUER, sub: account ?? "", aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(12).toString("hex"), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign("RSA-SHA256").update(signingInput).sign(this.signingKeyPem);
    const token = `${signingInput}.${b64url(signature)}`;
    reply(200, { token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() });
  }
}

/** Refuses the next `count` pull tokens for `repo` on `service` as the service refuses a revoked credential; a login still passes. */
export async function revokeAfterLogin(tokenServerUrl: string, service: string, repo: string, count = 1): Promise<void> {
  const res = await fetch(`${tokenServerUrl}/__token/revoke?service=${encodeURIComponent(service)}&repo=${encodeURIComponent(repo)}&count=${count}`, { method: "POST" });
  if (res.status !== 204) throw new Error(`revoke ${repo} on ${service}: ${res.status}`);
}
