// docs/reference.md §8: the daemon's HTTP API on node:http, or node:https when given a
// certificate (docs/reference.md §4: always off loopback). Bearer tokens compare in
// constant time; bodies are limited to 1 MiB; slow or malformed requests are
// cut off; errors are JSON; every answer passes the scrubber on its way out.
import { createHash, timingSafeEqual } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { Scrubber } from "../errors/scrub.ts";
import type { Logger } from "../log.ts";
import { validateSpec, type BakeSpec, type Violation } from "../spec/schema.ts";
import type { BakeRecord, Submit } from "./bakes.ts";
import type { Readiness } from "./readiness.ts";
import type { DaemonStatus } from "./status.ts";
import { jsonSyntaxMessage } from "../errors/json-syntax.ts";

const MAX_BODY_BYTES = 1 << 20;
/** A client that has not sent its headers by then is cut off. */
const HEADERS_TIMEOUT_MS = 5000;
/** A whole request (headers and a 1 MiB body) on loopback takes far less. */
export const REQUEST_TIMEOUT_MS = 15_000;
/**
 * Open connections at most; past it, new ones are dropped at once. The API's
 * callers are a control plane, health probes and a metrics scraper: a handful.
 * The bound keeps a flood of idle or slow connections (each cut off after
 * HEADERS_TIMEOUT_MS anyway) from taking the daemon's file descriptors.
 */
export const MAX_CONNECTIONS = 64;

export interface ApiDeps {
  apiToken: string;
  scrubber: Scrubber;
  logger: Logger;
  ssmParameterPrefix: string;
  /** GET /v1/status (status.ts). */
  status: () => Promise<DaemonStatus>;
  readiness: () => Promise<Readiness>;
  metrics: () => Promise<{ contentType: string; body: string }>;
  submit: (spec: BakeSpec) => Submit;
  bake: (bakeId: string) => BakeRecord | undefined;
  accepting: () => boolean;
  /** MAX_CONNECTIONS unless given. */
  maxConnections?: number;
  /** PEM certificate chain and key: the API then serves only TLS. */
  tls?: { cert: string; key: string };
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: Record<string, unknown>;

  constructor(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? "");
  // Comparing fixed-length digests keeps the time independent of where they differ and of the length.
  return timingSafeEqual(digest(m?.[1] ?? "\u0000no token"), digest(token)) && m !== null;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > MAX_BODY_BYTES) return Promise.reject(new HttpError(413, "payload_too_large", `the body is limited to ${MAX_BODY_BYTES} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, "payload_too_large", `the body is limited to ${MAX_BODY_BYTES} bytes`));
        req.removeAllListeners("data");
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const ROUTES: { pattern: RegExp; methods: string[]; auth: boolean }[] = [
  { pattern: /^\/healthz$/, methods: ["GET"], auth: false },
  { pattern: /^\/readyz$/, methods: ["GET"], auth: false },
  { pattern: /^\/metrics$/, methods: ["GET"], auth: false },
  { pattern: /^\/v1\/status$/, methods: ["GET"], auth: true },
  { pattern: /^\/v1\/bakes$/, methods: ["POST"], auth: true },
  { pattern: /^\/v1\/bakes\/[^/]+$/, methods: ["GET"], auth: true },
];

type Send = (res: http.ServerResponse, status: number, body: unknown, headers?: Record<string, string>) => void;

/** JSON answers, scrubbed on their way out. */
function jsonSender(scrubber: Scrubber): Send {
  return (res, status, body, headers = {}) => {
    const text = scrubber.scrub(JSON.stringify(body));
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "cache-control": "no-store", ...headers });
    res.end(text);
  };
}

/** The request's route, its method allowed and its bearer token checked; an HttpError otherwise. */
function authorize(req: http.IncomingMessage, url: URL, apiToken: string): void {
  const route = ROUTES.find((r) => r.pattern.test(url.pathname));
  if (!route) throw new HttpError(404, "not_found", `no route ${url.pathname}`);
  const method = req.method === "HEAD" ? "GET" : (req.method ?? "");
  if (!route.methods.includes(method)) {
    throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed on ${url.pathname}`, { allow: route.methods.join(", ") });
  }
  if (route.auth && !bearerMatches(req.headers["authorization"], apiToken)) {
    throw new HttpError(401, "unauthorized", "a valid bearer token is required", { "www-authenticate": 'Bearer realm="slothbox-agent"' });
  }
}

/** POST /v1/bakes: a valid spec starts a bake, or answers the one known or running. */
async function postBake(deps: ApiDeps, send: Send, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  if (!deps.accepting()) throw new HttpError(503, "shutting_down", "the agent is stopping and accepts no bakes");
  const text = await readBody(req);
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "malformed_json", `the body is not valid JSON: ${jsonSyntaxMessage(err)}`);
  }
  const v = validateSpec(input, { ssmParameterPrefix: deps.ssmParameterPrefix });
  if (!v.ok) {
    const violations: Violation[] = v.violations;
    return send(res, 422, { error: { code: "spec_invalid", message: `the bake spec has ${violations.length} violation(s)` }, violations });
  }
  const s = deps.submit(v.spec);
  if (s.kind === "busy") {
    return send(res, 409, { error: { code: "bake_in_progress", message: `bake ${s.running} is running; bakes run one at a time` }, bakeId: s.running });
  }
  if (s.kind === "known") return send(res, 200, s.record);
  return send(res, 202, { bakeId: s.record.bakeId }, { location: `/v1/bakes/${encodeURIComponent(s.record.bakeId)}` });
}

/** GET /v1/bakes/<id>. */
function getBake(deps: ApiDeps, send: Send, pathname: string, res: http.ServerResponse): void {
  let id: string;
  try {
    id = decodeURIComponent(pathname.slice("/v1/bakes/".length));
  } catch {
    throw new HttpError(400, "bad_request", "the bake id in the path is not valid percent-encoding");
  }
  const r = deps.bake(id);
  if (!r) throw new HttpError(404, "not_found", `no bake ${id}`);
  return send(res, 200, r);
}

function handler(deps: ApiDeps, send: Send): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://agent");
    authorize(req, url, deps.apiToken);
    switch (url.pathname) {
      case "/healthz":
        return send(res, 200, { status: "ok" });
      case "/readyz": {
        const r = await deps.readiness();
        return send(res, r.status === "ready" ? 200 : 503, r);
      }
      case "/metrics": {
        const m = await deps.metrics();
        res.writeHead(200, { "content-type": m.contentType, "content-length": Buffer.byteLength(m.body) });
        res.end(m.body);
        return;
      }
      case "/v1/status":
        return send(res, 200, await deps.status());
      case "/v1/bakes":
        return postBake(deps, send, req, res);
      default:
        return getBake(deps, send, url.pathname, res);
    }
  };
}

/** Each request handled; what fails answers as JSON: an HttpError as itself, anything else as a 500 that names nothing. */
function listenerOf(deps: ApiDeps, send: Send): http.RequestListener {
  const handle = handler(deps, send);
  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      if (err instanceof HttpError) {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(err.extra)) if (typeof v === "string") headers[k] = v;
        send(res, err.status, { error: { code: err.code, message: err.message } }, { ...headers, ...(err.status === 413 ? { connection: "close" } : {}) });
        return;
      }
      deps.logger.error({ err: (err as Error)?.message }, "API handler failed");
      send(res, 500, { error: { code: "internal", message: "internal error" } });
    });
  };
}

export function createApiServer(deps: ApiDeps): http.Server | https.Server {
  const listener = listenerOf(deps, jsonSender(deps.scrubber));
  const options: http.ServerOptions = { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: 5000, connectionsCheckingInterval: 1000, maxHeaderSize: 16 * 1024 };
  // A TLS handshake is bounded like the headers: its default of 120 s would let a few idle clients hold every connection.
  const server = deps.tls
    ? https.createServer({ ...options, cert: deps.tls.cert, key: deps.tls.key, minVersion: "TLSv1.2", handshakeTimeout: HEADERS_TIMEOUT_MS }, listener)
    : http.createServer(options, listener);
  server.maxConnections = deps.maxConnections ?? MAX_CONNECTIONS;
  server.on("connection", (s) => s.setNoDelay(true));
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"error":{"code":"bad_request","message":"malformed request"}}');
    else socket.destroy();
  });
  return server;
}
