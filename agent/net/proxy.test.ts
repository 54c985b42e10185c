import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { ProxyConfigError, ProxyRoutes } from "./proxy.ts";

const PROXY = "http://sbx-user:pw%40secret@127.0.0.1:3128";
const via = (env: Record<string, string>, url: string, imds?: string) => new ProxyRoutes(env, imds).route(url);

describe("ProxyRoutes.route: curl's NO_PROXY rules, SPEC's ports", () => {
  const env = (noProxy: string) => ({ HTTPS_PROXY: PROXY, HTTP_PROXY: PROXY, NO_PROXY: noProxy });
  it.each([
    // [NO_PROXY, target, direct?]
    ["", "https://ssm.us-east-1.amazonaws.com", false],
    ["*", "https://ssm.us-east-1.amazonaws.com", true],
    // A bare domain is the domain and every name under it (curl); Node's own matching takes it as one name only.
    ["amazonaws.com", "https://ssm.us-east-1.amazonaws.com", true],
    ["amazonaws.com", "https://amazonaws.com", true],
    ["amazonaws.com", "https://notamazonaws.com", false],
    [".amazonaws.com", "https://ssm.us-east-1.amazonaws.com", true],
    ["*.amazonaws.com", "https://ssm.us-east-1.amazonaws.com", true],
    ["AmazonAWS.com.", "https://SSM.us-east-1.amazonaws.com", true],
    ["cp.internal:8443", "https://cp.internal:8443", true],
    ["cp.internal:8443", "https://cp.internal", false],
    ["cp.internal:443", "https://cp.internal", true],
    // CIDR: addresses written in the URL; a name is never resolved to decide.
    ["10.0.0.0/8", "http://10.1.2.3:8080", true],
    ["10.0.0.0/8", "http://11.1.2.3:8080", false],
    ["127.0.0.0/8", "https://127.0.0.1:9443", true],
    ["127.0.0.0/8", "https://localhost:9443", false],
    ["fd00::/8", "https://[fd12::1]:443", true],
    ["fd00::/8", "https://[fe80::1]:443", false],
    ["10.1.2.3", "http://10.1.2.3", true],
    ["::1", "http://[0:0::1]:80", true],
    ["[::1]:8080", "http://[::1]:8080", true],
    ["[::1]:8080", "http://[::1]:8081", false],
    [" example.org , 10.0.0.0/8 ", "http://10.9.9.9", true],
  ])("NO_PROXY=%j, %s: direct %s", (noProxy, target, direct) => {
    expect(via(env(noProxy), target).via).toBe(direct ? "direct" : "proxy");
  });

  it("says which entry matched, and which proxy and variable otherwise, without the proxy's credentials", () => {
    expect(via(env("x.test,10.0.0.0/8"), "http://10.2.3.4")).toEqual({ via: "direct", why: "NO_PROXY entry 10.0.0.0/8 matches" });
    const r = via(env(""), "https://ssm.eu-west-1.amazonaws.com");
    expect(r).toMatchObject({ via: "proxy", shown: "http://127.0.0.1:3128", variable: "HTTPS_PROXY" });
  });

  it("reads either case, the lower-case spelling first (as curl and Node do)", () => {
    const r = via({ https_proxy: "http://lower:1", HTTPS_PROXY: "http://upper:2", no_proxy: "a.test", NO_PROXY: "b.test" }, "https://b.test");
    expect(r).toMatchObject({ via: "proxy", shown: "http://lower:1", variable: "https_proxy" });
    expect(via({ https_proxy: "http://lower:1", no_proxy: "a.test" }, "https://x.a.test")).toEqual({ via: "direct", why: "no_proxy entry a.test matches" });
  });

  it("takes HTTPS_PROXY for https:// and HTTP_PROXY for http://", () => {
    expect(via({ HTTP_PROXY: PROXY }, "https://ssm.us-east-1.amazonaws.com")).toEqual({ via: "direct", why: "no proxy is set (HTTPS_PROXY nor https_proxy)" });
    expect(via({ HTTP_PROXY: PROXY }, "http://cp.test").via).toBe("proxy");
  });

  it("never proxies the instance metadata service, whatever NO_PROXY says", () => {
    const all = { HTTPS_PROXY: PROXY, HTTP_PROXY: PROXY };
    for (const target of ["http://169.254.169.254/latest/api/token", "http://[fd00:ec2::254]/latest/api/token", "http://127.0.0.9:4567/latest/api/token"]) {
      expect(via(all, target, "http://127.0.0.9:4567")).toEqual({ via: "direct", why: "the instance metadata service is never proxied" });
    }
    // A configured endpoint is its address and port: another service at that address is routed as any other.
    expect(via(all, "http://127.0.0.9:8080/x", "http://127.0.0.9:4567").via).toBe("proxy");
  });

  it("takes a proxy without a scheme as http:// (curl); refuses one it cannot speak to", () => {
    expect(via({ HTTPS_PROXY: "proxy.corp:3128" }, "https://x.test")).toMatchObject({ shown: "http://proxy.corp:3128" });
    expect(() => new ProxyRoutes({ HTTPS_PROXY: "socks5://proxy.corp:1080" })).toThrow(ProxyConfigError);
    expect(() => new ProxyRoutes({ HTTPS_PROXY: "socks5://proxy.corp:1080" })).toThrow(/HTTPS_PROXY names a socks5:\/\/ proxy/);
  });

  it("gives the proxy's user and password, decoded, for the scrubber", () => {
    expect(new ProxyRoutes({ HTTPS_PROXY: PROXY }).secrets()).toEqual(["sbx-user", "pw@secret"]);
    expect(new ProxyRoutes({}).secrets()).toEqual([]);
  });
});

describe("ProxyRoutes.agentFor", () => {
  it("sends a proxied request through the proxy with its credentials, and a NO_PROXY one straight to its target", async () => {
    const seen: { url: string | undefined; auth: string | undefined }[] = [];
    const proxy = http.createServer((req, res) => {
      seen.push({ url: req.url, auth: req.headers["proxy-authorization"] });
      res.end("proxy");
    });
    const target = http.createServer((_req, res) => res.end("target"));
    await Promise.all([new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r)), new Promise<void>((r) => target.listen(0, "127.0.0.1", r))]);
    const p = (proxy.address() as AddressInfo).port;
    const t = (target.address() as AddressInfo).port;
    const get = (url: string, agent: http.Agent) =>
      new Promise<string>((resolve, reject) => {
        http.get(url, { agent }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve(body));
        }).on("error", reject);
      });
    try {
      const routes = new ProxyRoutes({ HTTP_PROXY: `http://sbx-user:pw@127.0.0.1:${p}`, NO_PROXY: "127.0.0.0/8" });
      // localhost is not inside 127.0.0.0/8 as written: it goes through the proxy.
      expect(await get(`http://localhost:${t}/a`, await routes.agentFor(`http://localhost:${t}`))).toBe("proxy");
      expect(seen).toEqual([{ url: `http://localhost:${t}/a`, auth: `Basic ${Buffer.from("sbx-user:pw").toString("base64")}` }]);
      expect(await get(`http://127.0.0.1:${t}/b`, await routes.agentFor(`http://127.0.0.1:${t}`))).toBe("target");
      expect(seen).toHaveLength(1);
      for (const a of [await routes.agentFor(`http://localhost:${t}`), await routes.agentFor(`http://127.0.0.1:${t}`)]) a.destroy();
    } finally {
      proxy.closeAllConnections();
      target.closeAllConnections();
      await Promise.all([new Promise((r) => proxy.close(r)), new Promise((r) => target.close(r))]);
    }
  });
});
