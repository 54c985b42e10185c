// The one HTTP request the registry client makes, as a port: a URL in, a web
// Response out. Its Node implementation reaches a registry the way dockerd does
// (docs/reference.md §2a): trusting the system's CAs (the machine's store, which
// dockerd's Go reads, not only Node's bundled copy of Mozilla's), Node's own and
// NODE_EXTRA_CA_CERTS, plus dockerd's per-registry CAs
// (`<certsDir>/<host[:port]>/*.crt`, read at each request as dockerd does),
// through the agent's proxy settings (net/proxy.ts). Unit tests pass canned
// Responses instead.
import { readdirSync, readFileSync } from "node:fs";
import type { Agent, IncomingMessage } from "node:http";
import type { LookupFunction } from "node:net";
import path from "node:path";
import { Readable } from "node:stream";
import tls from "node:tls";
import type { ProxyRoutes } from "../net/proxy.ts";

export interface RegistryRequest {
  method: "GET" | "HEAD";
  headers: Record<string, string>;
  signal: AbortSignal;
  /** An insecure registry's HTTPS (dockerd: TLS without verification before plain HTTP). */
  insecureTls?: boolean;
}

/** Rejects only when no answer came (DNS, connection, TLS, abort): every HTTP status resolves. */
export type RegistryFetch = (url: URL, req: RegistryRequest) => Promise<Response>;

export interface TransportOptions {
  routes: ProxyRoutes;
  /** dockerd's per-registry certificate directories (default /etc/docker/certs.d). */
  certsDir?: string;
  /** How names resolve (default: the system's resolver, as dockerd's). */
  lookup?: LookupFunction;
}

export const DOCKER_CERTS_DIR = "/etc/docker/certs.d";

/** The CAs dockerd adds for `host` (its `host[:port]` directory's *.crt files). */
function registryCAs(certsDir: string, hostPort: string): string[] {
  const dir = path.join(certsDir, hostPort);
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith(".crt"))
      .map((f) => readFileSync(path.join(dir, f), "utf8"));
  } catch {
    return [];
  }
}

/** The CAs every request trusts: Node's default store (with NODE_EXTRA_CA_CERTS) and the system's. */
function baseCAs(): string[] {
  return [...new Set([...tls.getCACertificates("default"), ...tls.getCACertificates("system")])];
}

export function createRegistryFetch(opts: TransportOptions): RegistryFetch {
  const certsDir = opts.certsDir ?? DOCKER_CERTS_DIR;
  let base: { cas: string[]; context: tls.SecureContext } | undefined;
  // A context parses every CA of the system's store: one per distinct set of a host's CAs,
  // while certs.d is still read at each request, as dockerd reads it at each pull.
  const withOwn = new Map<string, tls.SecureContext>();
  const contextFor = (hostPort: string): tls.SecureContext => {
    base ??= (() => {
      const cas = baseCAs();
      return { cas, context: tls.createSecureContext({ ca: cas }) };
    })();
    const own = registryCAs(certsDir, hostPort);
    if (!own.length) return base.context;
    const key = own.join("\n");
    let context = withOwn.get(key);
    if (!context) withOwn.set(key, (context = tls.createSecureContext({ ca: [...base.cas, ...own] })));
    return context;
  };
  return async (url, req) => {
    const https = url.protocol === "https:";
    const mod = https ? await import("node:https") : await import("node:http");
    const agent: Agent = await opts.routes.agentFor(url);
    const secureContext = https ? contextFor(url.host) : undefined;
    return new Promise<Response>((resolve, reject) => {
      const r = mod.request(
        url,
        {
          method: req.method,
          headers: req.headers,
          agent,
          signal: req.signal,
          ...(opts.lookup ? { lookup: opts.lookup } : {}),
          ...(secureContext ? { secureContext } : {}),
          ...(https && req.insecureTls ? { rejectUnauthorized: false } : {}),
        },
        (res: IncomingMessage) => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined) continue;
            for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
          }
          const status = res.statusCode ?? 0;
          const noBody = req.method === "HEAD" || status === 204 || status === 304;
          if (noBody) res.resume();
          // The body is read (and bounded) by the client, as it arrives.
          const body = noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
          resolve(new Response(body, { status: status < 200 || status > 599 ? 599 : status, statusText: res.statusMessage ?? "", headers }));
        },
      );
      r.once("error", reject);
      r.end();
    });
  };
}
