import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock, systemRandom } from "../clock.ts";
import { Outbox } from "../state/outbox.ts";
import { ProxyRoutes } from "../net/proxy.ts";
import { Deliverer, httpPoster, isRetryableStatus, type PostEvent } from "./deliver.ts";
import { makeEvent } from "./events.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

async function setup(answers: (number | Error)[]) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-outbox-"));
  dirs.push(dir);
  const outbox = new Outbox(dir, systemClock);
  const sent: { url: string; headers: Record<string, string>; body: string }[] = [];
  const post: PostEvent = async (url, headers, body) => {
    sent.push({ url, headers, body });
    const a = answers.shift() ?? 202;
    if (a instanceof Error) throw a;
    return a;
  };
  const d = new Deliverer({ outbox, controlPlaneUrl: "http://cp.test/", token: "tok", post, clock: systemClock, random: systemRandom, logger: pino({ level: "silent" }) });
  return { outbox, sent, d };
}

describe("isRetryableStatus", () => {
  it.each([[500, true], [503, true], [408, true], [429, true], [400, false], [401, false], [404, false], [409, false]])("%i → %s", (s, r) => {
    expect(isRetryableStatus(s)).toBe(r);
  });
});

describe("Deliverer", () => {
  it("posts in order with bearer and Idempotency-Key, removing each event on 2xx", async () => {
    const { outbox, sent, d } = await setup([202, 200]);
    const a = makeEvent("bake.started", "bk1", 1);
    const b = makeEvent("bake.succeeded", "bk1", 2);
    await outbox.put("box 1", "bk1", a);
    await outbox.put("box 1", "bk1", b);
    expect(await d.drainOnce(new AbortController().signal)).toEqual({ delivered: 2, dropped: 0, blocked: false });
    expect(sent.map((s) => s.headers["idempotency-key"])).toEqual([a.id, b.id]);
    expect(sent[0]!.url).toBe("http://cp.test/v1/boxes/box%201/bakes/bk1/events");
    expect(sent[0]!.headers["authorization"]).toBe("Bearer tok");
    expect(await outbox.depth()).toBe(0);
  });

  it("keeps the event and stops on 5xx or a network error; drops it on other 4xx", async () => {
    const { outbox, d } = await setup([503, new Error("ECONNREFUSED"), 400, 202]);
    await outbox.put("b", "bk", makeEvent("bake.started", "bk", 1));
    await outbox.put("b", "bk", makeEvent("bake.failed", "bk", 2));
    expect((await d.drainOnce(new AbortController().signal)).blocked).toBe(true);
    expect((await d.drainOnce(new AbortController().signal)).blocked).toBe(true);
    expect(await outbox.depth()).toBe(2);
    expect(await d.drainOnce(new AbortController().signal)).toEqual({ delivered: 1, dropped: 1, blocked: false });
    expect(await outbox.depth()).toBe(0);
  });

  it("backs off by the clock it is given: full jitter doubling per failure, no real waiting", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-outbox-"));
    dirs.push(dir);
    // A clock that never waits and a fixed draw: the sleeps are exact and the test takes no time.
    const slept: number[] = [];
    const clock = { now: () => 1_000_000, sleep: async (ms: number) => void slept.push(ms) };
    const outbox = new Outbox(dir, clock);
    const answers = [503, 503, new Error("ECONNRESET"), 202];
    const post: PostEvent = async () => {
      const a = answers.shift() ?? 202;
      if (a instanceof Error) throw a;
      return a;
    };
    const d = new Deliverer({ outbox, controlPlaneUrl: "http://cp.test/", token: "tok", post, clock, random: () => 0.5, logger: pino({ level: "silent" }) });
    const file = await outbox.put("b", "bk", makeEvent("bake.started", "bk", 1));
    // The outbox names its files by the same clock: they sort in the order it says events were made.
    expect(path.basename(file)).toMatch(/^000000001000000-000000-/);
    await d.drain(new AbortController().signal);
    // Half of 250 ms × 2^failures (the cap): 500 / 2, 1000 / 2, 2000 / 2.
    expect(slept).toEqual([250, 500, 1000]);
    expect(d.delivered).toBe(1);
    expect(await outbox.depth()).toBe(0);
  });
});

describe("outbox files that are not deliverable events", () => {
  it("leaves a file it cannot read where it is, and sends the events after it", async () => {
    const { outbox, sent, d } = await setup([202]);
    // A directory where a file should be: reading it fails (EISDIR) as a root-only file fails for the daemon (EACCES).
    const blocked = path.join(outbox.dir, "000000000000001-000000-evt_blocked.json");
    mkdirSync(blocked, { recursive: true });
    await outbox.put("b", "bk", makeEvent("bake.started", "bk", 2));
    expect(await d.drainOnce(new AbortController().signal)).toEqual({ delivered: 1, dropped: 0, blocked: false });
    expect(sent).toHaveLength(1);
    expect(existsSync(blocked)).toBe(true);
  });

  it("moves a file that is not an event aside to outbox/corrupt/ instead of deleting it", async () => {
    const { outbox, sent, d } = await setup([]);
    mkdirSync(outbox.dir, { recursive: true });
    const bad = path.join(outbox.dir, "000000000000001-000000-evt_bad.json");
    writeFileSync(bad, "{truncated");
    expect(await d.drainOnce(new AbortController().signal)).toEqual({ delivered: 0, dropped: 0, blocked: false });
    expect(sent).toEqual([]);
    expect(existsSync(bad)).toBe(false);
    expect(readFileSync(path.join(outbox.dir, "corrupt", path.basename(bad)), "utf8")).toBe("{truncated");
  });
});

describe("httpPoster", () => {
  const routes = new ProxyRoutes({});
  const httpPost = httpPoster((url) => routes.agentFor(url));
  it("posts the body with the headers and answers the status, on a control plane that answers slowly too", async () => {
    const http = await import("node:http");
    const got: { method?: string; auth?: string; type?: string; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        got.push({ method: req.method, auth: req.headers["authorization"], type: req.headers["content-type"], body });
        setTimeout(() => res.writeHead(202).end("accepted"), 20);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as import("node:net").AddressInfo).port}/v1/boxes/b/bakes/k/events`;
      const status = await httpPost(url, { authorization: "Bearer tok", "content-type": "application/json" }, '{"é":1}', AbortSignal.timeout(5000));
      expect(status).toBe(202);
      expect(got).toEqual([{ method: "POST", auth: "Bearer tok", type: "application/json", body: '{"é":1}' }]);
      await expect(httpPost(url, {}, "{}", AbortSignal.timeout(5))).rejects.toThrow();
    } finally {
      server.close();
    }
  });

  it("never follows a redirect: the event and the bearer token stay away from where it points", async () => {
    const http = await import("node:http");
    const seen: string[] = [];
    const elsewhere = http.createServer((req, res) => {
      seen.push(String(req.headers["authorization"]));
      res.writeHead(202).end();
    });
    await new Promise<void>((r) => elsewhere.listen(0, "127.0.0.1", r));
    const target = `http://127.0.0.1:${(elsewhere.address() as import("node:net").AddressInfo).port}/x`;
    const redirecting = http.createServer((_req, res) => res.writeHead(307, { location: target }).end());
    await new Promise<void>((r) => redirecting.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(redirecting.address() as import("node:net").AddressInfo).port}/v1/boxes/b/bakes/k/events`;
      await expect(httpPost(url, { authorization: "Bearer tok" }, "{}", AbortSignal.timeout(5000))).rejects.toThrow(/answered 307 redirecting to http:\/\/127\.0\.0\.1:\d+\/x; redirects are not followed/);
      expect(seen).toEqual([]);
    } finally {
      redirecting.close();
      elsewhere.close();
    }
  });
});
