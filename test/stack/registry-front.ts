// The front of each registry of the stack: an HTTP server (HTTPS for Docker
// Hub) on the registry's own name and address, proxying to a real distribution
// registry behind it, and answering refusals in the real service's words
// (refusals.ts) where they differ from distribution's. Tests ask a front for
// faults on one repository and read what it saw:
//   POST /__front/fault?repo=R&kind=K[&count=N]   K: ratelimit | unavailable | badgateway | tamper | tamperlayer | words | slow
//        (words: the JSON body {status, body, contentType} is the next answers' to the repository's manifest;
//        tamper: a manifest fetched by digest comes with a byte more; tamperlayer: a layer blob with its
//        last byte changed, the same size — content that does not match its digest, either way;
//        slow&rate=B: the next N blobs are sent at B bytes a second each, as over a real network)
//   GET  /__front/requests?repo=R                 {"manifests": n, "blobs": n, "manifestHeads": n, "manifestGets": n}:
//        retries are counted here (engines differ in how they ask for a manifest: HEAD, GET or both)
// `stall` fronts (the stall registry) send half of every layer blob and then nothing.
// dockerd retries blob 5xx itself, so faults are answered on manifests (`slow` alone paces blobs).
import http from "node:http";
import https from "node:https";
import { BAD_GATEWAY, ECR, REGISTRY_REFUSALS, type Answer, type RegistryKind } from "./refusals.ts";

export type FaultKind = "ratelimit" | "unavailable" | "badgateway" | "tamper" | "tamperlayer" | "words" | "slow";

export interface FrontOptions {
  /** The registry's name (ghcr.io, …): what its Basic challenge and ECR's IAM answers name. */
  host: string;
  address: string;
  /** Plain HTTP (80): registry traffic, and the tests' control requests. */
  port: number;
  /** Also TLS on this port (Docker Hub's 443), one front with the plain port: same faults, same counts. */
  tls?: { port: number; certPem: string; keyPem: string };
  backend: { address: string; port: number };
  /** Whose words it speaks; undefined: distribution's own (the stall and flaky registries). */
  kind?: RegistryKind;
  /** Hold every layer blob after half of it. */
  stall?: boolean;
  /** ECR: the registry id and region its IAM answers name. */
  ecr?: { accountId: string; region: string };
}

export interface RegistryFront {
  url: string;
  stop(): Promise<void>;
}

export interface RequestCounts {
  manifests: number;
  blobs: number;
  manifestHeads: number;
  manifestGets: number;
}

const noRequests = (): RequestCounts => ({ manifests: 0, blobs: 0, manifestHeads: 0, manifestGets: 0 });

interface Fault {
  kind: FaultKind;
  count: number;
  words?: { status: number; body: string; contentType: string };
  /** slow: bytes a second per blob. */
  rate?: number;
}

const UNAVAILABLE: Answer = {
  status: 503,
  body: JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "service unavailable" }] }),
  headers: { "content-type": "application/json" },
};

function reply(req: http.IncomingMessage, res: http.ServerResponse, a: Answer, extra: Record<string, string> = {}): void {
  const body = Buffer.from(a.body);
  res.writeHead(a.status, { "docker-distribution-api-version": "registry/2.0", ...a.headers, ...extra, "content-length": String(body.length) });
  res.end(req.method === "HEAD" ? undefined : body);
}

/** The JWT's subject: empty for the anonymous tokens a token server hands out. */
function bearerSubject(auth: string | undefined): string | undefined {
  if (!auth?.startsWith("Bearer ")) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(auth.slice(7).split(".")[1] ?? "", "base64url").toString("utf8")) as { sub?: string };
    return payload.sub ?? "";
  } catch {
    return undefined;
  }
}

function basicPassword(auth: string | undefined): string | undefined {
  if (!auth?.startsWith("Basic ")) return undefined;
  const decoded = Buffer.from(auth.slice(6), "base64").toString("utf8");
  return decoded.slice(decoded.indexOf(":") + 1);
}

/** Sends `from` to `to` at `rate` bytes a second: pauses the upstream whenever it is ahead. */
function pace(from: http.IncomingMessage, to: http.ServerResponse, rate: number): void {
  const started = Date.now();
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  from.on("data", (chunk: Buffer) => {
    to.write(chunk);
    sent += chunk.length;
    const ahead = started + (sent / rate) * 1000 - Date.now();
    if (ahead > 0) {
      from.pause();
      timer = setTimeout(() => from.resume(), ahead);
    }
  });
  from.on("end", () => to.end());
  to.on("close", () => {
    clearTimeout(timer);
    from.destroy();
  });
}

export async function startRegistryFront(opts: FrontOptions): Promise<RegistryFront> {
  const faults = new Map<string, Fault>();
  const counts = new Map<string, RequestCounts>();
  const held = new Set<http.ServerResponse>();
  /** Added before each registry request is passed on: a registry across a network (the bench's BENCH_REGISTRY_LATENCY_MS). */
  let latencyMs = 0;
  const refusals = opts.kind ? REGISTRY_REFUSALS[opts.kind] : undefined;

  const control = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const repo = url.searchParams.get("repo") ?? "";
    if (req.method === "GET" && url.pathname === "/__front/requests") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(counts.get(repo) ?? noRequests()));
      return;
    }
    if (req.method === "POST" && url.pathname === "/__front/latency") {
      latencyMs = Number(url.searchParams.get("ms") ?? "0");
      res.writeHead(204).end();
      return;
    }
    if (req.method === "POST" && url.pathname === "/__front/fault") {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const kind = url.searchParams.get("kind") as FaultKind;
        const fault: Fault = { kind, count: Number(url.searchParams.get("count") ?? "1") };
        if (kind === "words" && chunks.length > 0) fault.words = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Fault["words"];
        if (kind === "slow") fault.rate = Number(url.searchParams.get("rate"));
        faults.set(repo, fault);
        res.writeHead(204).end();
      });
      return;
    }
    res.writeHead(404).end();
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://front");
    if (url.pathname.startsWith("/__front/")) return control(req, res, url);
    if (latencyMs > 0) {
      req.pause();
      setTimeout(() => {
        req.resume();
        serve(req, res, url);
      }, latencyMs);
      return;
    }
    serve(req, res, url);
  };

  const serve = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    const repo = m?.[1];
    const what = m?.[2] as "manifests" | "blobs" | undefined;
    const reference = m?.[3] ?? "";
    if (repo && what) {
      const c = counts.get(repo) ?? noRequests();
      c[what] += 1;
      if (what === "manifests" && req.method === "HEAD") c.manifestHeads += 1;
      if (what === "manifests" && req.method === "GET") c.manifestGets += 1;
      counts.set(repo, c);
    }

    if (opts.ecr) {
      const password = basicPassword(req.headers["authorization"]);
      if (password?.startsWith("expired-")) return reply(req, res, ECR.expired);
      // The role may not pull (BatchGetImage) from repositories under denied/; pushes are the tests' own.
      const pulling = req.method === "GET" || req.method === "HEAD";
      if (pulling && password !== undefined && repo?.startsWith("denied/")) return reply(req, res, ECR.roleDenied(opts.ecr.accountId, opts.ecr.region, repo));
    }

    const fault = repo ? faults.get(repo) : undefined;
    const passive = fault?.kind === "tamper" || fault?.kind === "tamperlayer" || fault?.kind === "slow";
    if (what === "manifests" && fault && fault.count > 0 && !passive) {
      fault.count -= 1;
      if (fault.kind === "ratelimit") return reply(req, res, refusals?.rateLimited ?? REGISTRY_REFUSALS.dockerhub.rateLimited);
      if (fault.kind === "unavailable") return reply(req, res, UNAVAILABLE);
      if (fault.kind === "badgateway") return reply(req, res, BAD_GATEWAY);
      const w = fault.words!;
      return reply(req, res, { status: w.status, body: w.body, headers: { "content-type": w.contentType } });
    }
    const tamperManifest = fault?.kind === "tamper" && what === "manifests" && fault.count > 0 && reference.startsWith("sha256:") && req.method === "GET";
    if (tamperManifest) fault.count -= 1;
    const rate = fault?.kind === "slow" && fault.count > 0 && what === "blobs" && req.method === "GET" ? fault.rate : undefined;
    if (rate && fault) fault.count -= 1;

    const up = http.request(
      { host: opts.backend.address, port: opts.backend.port, method: req.method, path: req.url, headers: { ...req.headers, host: `${opts.backend.address}:${opts.backend.port}` } },
      (upRes) => {
        const status = upRes.statusCode ?? 502;
        // distribution writes upload locations with the Host it was sent (the backend's): made relative, a
        // client that follows them (cosign, @sigstore/oci) comes back through this front, as the spec allows.
        const backendOrigin = `http://${opts.backend.address}:${opts.backend.port}`;
        if (upRes.headers.location?.startsWith(backendOrigin)) upRes.headers.location = upRes.headers.location.slice(backendOrigin.length);
        // Layers, not the image config: a config blob is a few hundred bytes.
        const isLayer = what === "blobs" && req.method === "GET" && status === 200 && Number(upRes.headers["content-length"] ?? 0) > 4096;
        const tamperLayer = fault?.kind === "tamperlayer" && fault.count > 0 && isLayer;
        if (tamperLayer) fault.count -= 1;
        const rewrite =
          (status === 401 && repo && (opts.ecr || refusals?.unauthorized)) ||
          (status === 404 && what === "manifests" && refusals?.manifestUnknown) ||
          tamperManifest ||
          tamperLayer;
        if (!rewrite && rate) {
          res.writeHead(status, upRes.headers);
          pace(upRes, res, rate);
          return;
        }
        if (!rewrite) {
          res.writeHead(status, upRes.headers);
          if (!(opts.stall && isLayer)) {
            upRes.pipe(res);
            return;
          }
          const half = Math.floor(Number(upRes.headers["content-length"]) / 2);
          let sent = 0;
          held.add(res);
          res.on("close", () => held.delete(res));
          upRes.on("data", (chunk: Buffer) => {
            if (sent >= half) return;
            const part = chunk.subarray(0, half - sent);
            sent += part.length;
            res.write(part);
          });
          return;
        }
        const chunks: Buffer[] = [];
        upRes.on("data", (c: Buffer) => chunks.push(c));
        upRes.on("end", () => {
          if (tamperManifest) {
            // The bytes of another manifest under the digest asked for: dockerd must notice.
            const body = Buffer.concat([Buffer.concat(chunks), Buffer.from("\n")]);
            res.writeHead(status, { ...upRes.headers, "content-length": String(body.length) });
            res.end(body);
            return;
          }
          if (tamperLayer) {
            // The same size, other bytes: only the digest can tell.
            const body = Buffer.concat(chunks);
            body[body.length - 1] = body[body.length - 1]! ^ 0xff;
            res.writeHead(status, upRes.headers);
            res.end(body);
            return;
          }
          const challenge = upRes.headers["www-authenticate"];
          if (status === 401 && opts.ecr) return reply(req, res, ECR.notAuthorized(opts.host));
          if (status === 401 && refusals?.unauthorized) {
            const subject = bearerSubject(req.headers["authorization"]);
            return reply(req, res, refusals.unauthorized(repo!, subject !== undefined && subject !== ""), challenge ? { "www-authenticate": String(challenge) } : {});
          }
          reply(req, res, refusals!.manifestUnknown!(repo!, reference));
        });
      },
    );
    // The registry refused or dropped the connection: before any answer, say so the way a load
    // balancer in front of a registry does (a 502), so that the failing hop is named, not a hang-up.
    up.on("error", () => (res.headersSent ? res.destroy() : reply(req, res, BAD_GATEWAY)));
    req.pipe(up);
  };

  const servers: http.Server[] = [http.createServer(handler)];
  if (opts.tls) servers.push(https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handler));
  for (const [i, server] of servers.entries()) {
    server.on("connection", (sock) => sock.setNoDelay(true));
    // Never close an idle connection from this side: a server that does races every client reusing it
    // at that moment (ECONNRESET, "socket hang up"), and the tests' clients run in processes their own
    // work blocks for seconds. Clients that pool connections close idle ones on their own timers (Node's
    // agent after 5 s, undici after 4 s), which cannot race; stop() closes whatever is left.
    server.keepAliveTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(i === 0 ? opts.port : opts.tls!.port, opts.address, resolve);
    });
  }
  return {
    url: opts.tls ? `https://${opts.address}${opts.tls.port === 443 ? "" : `:${opts.tls.port}`}` : `http://${opts.address}${opts.port === 80 ? "" : `:${opts.port}`}`,
    async stop() {
      for (const r of held) r.destroy();
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}

/** Asks the front at `url` to wait `ms` before passing each registry request on (a registry across a network). */
export async function setLatency(url: string, ms: number): Promise<void> {
  const res = await fetch(`${url}/__front/latency?ms=${ms}`, { method: "POST" });
  if (res.status !== 204) throw new Error(`latency ${ms} ms at ${url}: ${res.status}`);
}

/** Asks the front at `url` for `count` faults on `repo`'s manifest (words: the answer to give). */
export async function injectFault(url: string, repo: string, kind: FaultKind, count = 1, words?: { status: number; body: string; contentType: string }): Promise<void> {
  const res = await fetch(`${url}/__front/fault?repo=${encodeURIComponent(repo)}&kind=${kind}&count=${count}`, {
    method: "POST",
    ...(words ? { body: JSON.stringify(words) } : {}),
    // The stack's Docker Hub front is on TLS with the test CA: only plain fronts take faults from tests.
  });
  if (res.status !== 204) throw new Error(`fault ${kind} on ${repo} at ${url}: ${res.status}`);
}

/** Asks the front at `url` to send `repo`'s next `count` blobs at `bytesPerSecond` each. */
export async function slowBlobs(url: string, repo: string, bytesPerSecond: number, count: number): Promise<void> {
  const res = await fetch(`${url}/__front/fault?repo=${encodeURIComponent(repo)}&kind=slow&count=${count}&rate=${bytesPerSecond}`, { method: "POST" });
  if (res.status !== 204) throw new Error(`slow blobs on ${repo} at ${url}: ${res.status}`);
}

/** How many manifest and blob requests the front at `url` saw for `repo`. */
export async function requestCounts(url: string, repo: string): Promise<RequestCounts> {
  return (await fetch(`${url}/__front/requests?repo=${encodeURIComponent(repo)}`)).json() as Promise<RequestCounts>;
}
