// A control-plane receiver for SPEC §7 events: checks the bearer token, records
// every delivery and its Idempotency-Key, and can be told to fail or be down.
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";

/**
 * Whether an event type is one a bake keeps in its outbox: every type but the
 * best-effort service.progress, which comes for any pull longer than 10 s —
 * and on a busy machine any pull may take that long.
 */
export const kept = (type: unknown): boolean => type !== "service.progress";

export interface Delivery {
  at: number;
  boxId: string;
  bakeId: string;
  idempotencyKey: string | undefined;
  status: number;
  body: Record<string, unknown>;
}

export class ControlPlane {
  url = "";
  readonly deliveries: Delivery[] = [];
  /** Status to answer with instead of 202 for the next `failTimes` deliveries. */
  private failStatus = 0;
  private failTimes = 0;
  /** Record deliveries but never answer (an agent killed mid-delivery). */
  hang = false;
  private server: http.Server | https.Server | undefined;
  private port = 0;

  readonly token: string;
  private readonly host: string;

  /** `tls`: answer over HTTPS with this certificate, as a real control plane does. */
  private readonly tls: { cert: string; key: string } | undefined;

  constructor(token: string, host = "127.0.0.1", tls?: { cert: string; key: string }) {
    this.token = token;
    this.host = host;
    this.tls = tls;
  }

  async start(port = this.port): Promise<this> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    const server = this.tls ? https.createServer(this.tls, handler) : http.createServer(handler);
    server.on("connection", (s) => s.setNoDelay(true));
    await new Promise<void>((resolve) => server.listen(port, this.host, resolve));
    this.port = (server.address() as AddressInfo).port;
    this.url = `${this.tls ? "https" : "http"}://${this.host}:${this.port}`;
    this.server = server;
    return this;
  }

  /** Go down: the port refuses connections until `start()` again (same port). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  failNext(times: number, status = 503): void {
    this.failTimes = times;
    this.failStatus = status;
  }

  /** Events accepted (2xx), one per idempotency key. */
  accepted(): Record<string, unknown>[] {
    const seen = new Map<string, Record<string, unknown>>();
    for (const d of this.deliveries) if (d.status < 300 && d.idempotencyKey) seen.set(d.idempotencyKey, d.body);
    return [...seen.values()];
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const m = /^\/v1\/boxes\/([^/]+)\/bakes\/([^/]+)\/events$/.exec(req.url ?? "");
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (req.method !== "POST" || !m) return reply(404, { error: "not found" });
    if (req.headers["authorization"] !== `Bearer ${this.token}`) return reply(401, { error: "unauthorized" });
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    } catch {
      return reply(400, { error: "malformed JSON" });
    }
    const key = typeof req.headers["idempotency-key"] === "string" ? req.headers["idempotency-key"] : undefined;
    if (this.hang) {
      this.deliveries.push({ at: Date.now(), boxId: decodeURIComponent(m[1]!), bakeId: decodeURIComponent(m[2]!), idempotencyKey: key, status: 0, body });
      return;
    }
    let status = 202;
    if (this.failTimes > 0) {
      this.failTimes -= 1;
      status = this.failStatus;
    }
    this.deliveries.push({ at: Date.now(), boxId: decodeURIComponent(m[1]!), bakeId: decodeURIComponent(m[2]!), idempotencyKey: key, status, body });
    reply(status, status < 300 ? { accepted: true } : { error: "injected failure" });
  }
}
