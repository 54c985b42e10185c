import net from "node:net";
import { describe, expect, it } from "vitest";
import { Scrubber } from "../errors/scrub.ts";
import { createLogger } from "../log.ts";
import { bearerMatches, createApiServer, MAX_CONNECTIONS, type ApiDeps } from "./api.ts";
import { watchdogIntervalMs } from "./sd-notify.ts";

describe("bearerMatches", () => {
  it("accepts only the exact token in a Bearer header", () => {
    expect(bearerMatches("Bearer s3cret", "s3cret")).toBe(true);
    expect(bearerMatches("Bearer s3cre", "s3cret")).toBe(false);
    expect(bearerMatches("Bearer s3cretX", "s3cret")).toBe(false);
    expect(bearerMatches("bearer s3cret", "s3cret")).toBe(false);
    expect(bearerMatches("s3cret", "s3cret")).toBe(false);
    expect(bearerMatches(undefined, "s3cret")).toBe(false);
    expect(bearerMatches(undefined, "\u0000no token")).toBe(false);
  });
});

describe("watchdogIntervalMs", () => {
  it("pings at half of WATCHDOG_USEC, only for this process", () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "60000000" })).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "60000000", WATCHDOG_PID: "1" })).toBeUndefined();
    expect(watchdogIntervalMs({})).toBeUndefined();
  });
});

describe("createApiServer's connection bound", () => {
  const deps = (): ApiDeps => ({
    apiToken: "t",
    scrubber: new Scrubber(),
    logger: createLogger("silent", new Scrubber()),
    ssmParameterPrefix: "/p/",
    status: async () => ({ version: "0.0.0-test", boxId: null, uptimeSeconds: 0, runningBake: null, lastBake: null, lastReconcile: null, lastCleanup: null, outboxEvents: null }),
    readiness: async () => ({ status: "ready", checks: { docker: { ok: true }, aws: { ok: true }, stateDir: { ok: true } } }),
    metrics: async () => ({ contentType: "text/plain", body: "" }),
    submit: () => {
      throw new Error("no bakes here");
    },
    bake: () => undefined,
    accepting: () => true,
  });

  it("bounds its connections by default, with room for a control plane, probes and a scraper", () => {
    const server = createApiServer(deps());
    expect(server.maxConnections).toBe(MAX_CONNECTIONS);
    expect(MAX_CONNECTIONS).toBeGreaterThanOrEqual(16);
    expect(MAX_CONNECTIONS).toBeLessThanOrEqual(1024);
  });

  it("drops a connection past the bound and serves again once one closes", async () => {
    const server = createApiServer({ ...deps(), maxConnections: 2 });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const open: net.Socket[] = [];
    try {
      // Two clients that send half a request and wait: they hold both places.
      for (let i = 0; i < 2; i++) {
        const s = net.connect({ host: "127.0.0.1", port });
        s.on("error", () => undefined);
        await new Promise((r) => s.once("connect", r));
        s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
        open.push(s);
      }
      await until(async () => (await new Promise<number>((r) => server.getConnections((_e, n) => r(n)))) === 2);
      const third = net.connect({ host: "127.0.0.1", port });
      open.push(third);
      let answered = "";
      third.on("data", (c: Buffer) => (answered += c.toString()));
      third.on("error", () => undefined);
      third.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      await new Promise((r) => third.once("close", r));
      expect(answered).toBe("");
      open[0]!.destroy();
      await until(async () => (await new Promise<number>((r) => server.getConnections((_e, n) => r(n)))) < 2);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { connection: "close" } });
      expect(res.status).toBe(200);
    } finally {
      for (const s of open) s.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

async function until(fn: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500 && !(await fn()); i++) await new Promise((r) => setTimeout(r, 10));
}
