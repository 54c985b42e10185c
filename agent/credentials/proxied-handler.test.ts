import http from "node:http";
import type { AddressInfo } from "node:net";
import { HttpRequest } from "@smithy/protocol-http";
import { describe, expect, it } from "vitest";
import { ProxyRoutes } from "../net/proxy.ts";
import { NodeHttpHandler } from "./aws-sdk.ts";
import { proxiedHandler, requestOrigin } from "./proxied-handler.ts";

describe("proxiedHandler", () => {
  const options = { connectionTimeout: 3000, requestTimeout: 10_000 };

  it("leaves the SDK's handler options as they are where no proxy is set", async () => {
    expect(await proxiedHandler(NodeHttpHandler, options, new ProxyRoutes({}))).toBe(options);
  });

  it("names a request's origin as a URL does, an IPv6 address in brackets", () => {
    expect(requestOrigin({ protocol: "https:", hostname: "ssm.us-east-1.amazonaws.com" })).toBe("https://ssm.us-east-1.amazonaws.com");
    expect(requestOrigin({ protocol: "http:", hostname: "fd12::1", port: 8080 })).toBe("http://[fd12::1]:8080");
  });

  it("sends a request through the proxy, and one NO_PROXY matches straight to its target", async () => {
    const seen: string[] = [];
    const proxy = http.createServer((req, res) => {
      seen.push(`proxy ${req.url}`);
      res.end("{}");
    });
    const target = http.createServer((req, res) => {
      seen.push(`target ${req.url}`);
      res.end("{}");
    });
    await Promise.all([new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r)), new Promise<void>((r) => target.listen(0, "127.0.0.1", r))]);
    const t = (target.address() as AddressInfo).port;
    try {
      const routes = new ProxyRoutes({ HTTP_PROXY: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, NO_PROXY: "127.0.0.0/8" });
      const handler = await proxiedHandler(NodeHttpHandler, options, routes);
      if (!("handle" in handler)) throw new Error("expected a handler");
      for (const hostname of ["ssm.example.test", "127.0.0.1"]) {
        const { response } = await handler.handle(new HttpRequest({ protocol: "http:", hostname, port: t, method: "POST", path: "/", headers: { host: `${hostname}:${t}` }, body: "{}" }));
        response.body.resume();
      }
      expect(seen).toEqual([`proxy http://ssm.example.test:${t}/`, "target /"]);
      handler.destroy();
    } finally {
      proxy.closeAllConnections();
      target.closeAllConnections();
      await Promise.all([new Promise((r) => proxy.close(r)), new Promise((r) => target.close(r))]);
    }
  });
});
