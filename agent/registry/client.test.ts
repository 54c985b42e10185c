// The registry client on canned answers. The challenges are the registries' own:
// the distribution token spec's example and Docker Hub's
// (https://distribution.github.io/distribution/spec/auth/token/: `Bearer
// realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"`),
// GHCR's (`Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"`,
// sigstore/cosign#1669), Quay's (`Bearer realm="https://quay.io/v2/auth",service="quay.io"`,
// quay's endpoints/v2/__init__.py) and ECR's (`Basic realm="https://<acct>.dkr.ecr.<region>.amazonaws.com/",service="ecr.amazonaws.com"`,
// mayflower/docker-ls#28); error bodies follow the distribution spec's error codes.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { AgentError } from "../errors/agent-error.ts";
import { Scrubber } from "../errors/scrub.ts";
import { parseChallenge } from "./auth.ts";
import { RegistryClient, TooLargeError, type RegistryClientDeps, type Repository } from "./client.ts";
import type { RegistryFetch, RegistryRequest } from "./transport.ts";

const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", layers: [] }));
const DIGEST = `sha256:${createHash("sha256").update(MANIFEST).digest("hex")}`;
const signal = () => AbortSignal.timeout(10_000);

interface Seen {
  url: string;
  req: RegistryRequest;
}

function deps(fetch: RegistryFetch, extra: Partial<RegistryClientDeps> = {}): RegistryClientDeps & { scrubber: Scrubber } {
  return {
    fetch,
    registryConfig: async () => ({ indexConfigs: {}, insecureRegistryCIDRs: ["127.0.0.0/8", "::1/128"] }),
    lookup: async () => ["203.0.113.7"],
    scrubber: new Scrubber(),
    ...extra,
  } as RegistryClientDeps & { scrubber: Scrubber };
}

const manifestAnswer = () => new Response(new Uint8Array(MANIFEST), { status: 200, headers: { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": DIGEST } });
const errors = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ errors: [{ code, message }] }), { status, headers: { "content-type": "application/json", ...headers } });

function client(fetch: RegistryFetch, repo: Partial<Repository> = {}, extra: Partial<RegistryClientDeps> = {}) {
  const d = deps(fetch, extra);
  return { c: new RegistryClient(d, { registry: "ghcr.io", path: "acme/app", ...repo }), d };
}

describe("challenges", () => {
  it.each([
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
      { scheme: "bearer", realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:samalba/my-app:pull,push" },
    ],
    ['Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"', { scheme: "bearer", realm: "https://ghcr.io/token", service: "ghcr.io", scope: "repository:user/image:pull" }],
    ['Bearer realm="https://quay.io/v2/auth",service="quay.io"', { scheme: "bearer", realm: "https://quay.io/v2/auth", service: "quay.io" }],
    ['Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"', { scheme: "basic" }],
  ])("%s", (header, parsed) => {
    expect(parseChallenge(header)).toEqual(parsed);
  });

  it("no header, or a scheme the client does not speak: none", () => {
    expect(parseChallenge(null)).toBeUndefined();
    expect(parseChallenge('Negotiate realm="x"')).toBeUndefined();
  });
});

describe("authentication", () => {
  it.each([["file:///etc/shadow"], ["not a url"]])("a Bearer realm that is no http(s) URL (%s) is registry_unreachable, never asked", async (realm) => {
    const hosts: string[] = [];
    const { c } = client(async (url) => {
      hosts.push(url.href);
      return errors(401, "UNAUTHORIZED", "authentication required", { "www-authenticate": `Bearer realm="${realm}",service="ghcr.io"` });
    });
    await expect(c.manifest("1", signal())).rejects.toMatchObject({ code: "registry_unreachable", message: `the registry's token realm "${realm}" is not an http(s) URL` });
    expect(hosts.every((h) => h.startsWith("https://ghcr.io/"))).toBe(true);
  });

  it("answers a Bearer challenge with a token fetched with the credential, registers the token, and sends it", async () => {
    const seen: Seen[] = [];
    const { c, d } = client(
      async (url, req) => {
        seen.push({ url: url.href, req });
        if (url.host === "auth.example") return new Response(JSON.stringify({ token: "tok-0123456789abcdef" }), { status: 200 });
        if (req.headers["Authorization"] !== "Bearer tok-0123456789abcdef") return errors(401, "UNAUTHORIZED", "authentication required", { "www-authenticate": 'Bearer realm="https://auth.example/token",service="ghcr.io",scope="repository:acme/app:pull"' });
        return manifestAnswer();
      },
      { auth: { username: "acme-bot", password: "ghp_secretsecretsecret", serverAddress: "ghcr.io" } },
    );
    const m = await c.manifest("1", signal());
    expect(m?.digest).toBe(DIGEST);
    const token = seen.find((s) => s.url.startsWith("https://auth.example/"))!;
    expect(token.url).toBe("https://auth.example/token?service=ghcr.io&scope=repository%3Aacme%2Fapp%3Apull");
    expect(token.req.headers["Authorization"]).toBe(`Basic ${Buffer.from("acme-bot:ghp_secretsecretsecret").toString("base64")}`);
    expect(d.scrubber.scrub("tok-0123456789abcdef ghp_secretsecretsecret")).toBe("[REDACTED] [REDACTED]");
  });

  it("asks for an anonymous token without a credential", async () => {
    const seen: Seen[] = [];
    const { c } = client(async (url, req) => {
      seen.push({ url: url.href, req });
      if (url.host === "auth.example") return new Response(JSON.stringify({ access_token: "anon-token-0123456789" }), { status: 200 });
      if (!req.headers["Authorization"]) return errors(401, "UNAUTHORIZED", "authentication required", { "www-authenticate": 'Bearer realm="https://auth.example/token",service="quay.io"' });
      return manifestAnswer();
    });
    await c.manifest("1", signal());
    expect(seen[1]!.req.headers["Authorization"]).toBeUndefined();
    expect(seen[2]!.req.headers["Authorization"]).toBe("Bearer anon-token-0123456789");
  });

  it("answers ECR's Basic challenge with user AWS and the token", async () => {
    const seen: Seen[] = [];
    const { c } = client(
      async (url, req) => {
        seen.push({ url: url.href, req });
        return req.headers["Authorization"] ? manifestAnswer() : new Response("Not Authorized\n", { status: 401, headers: { "www-authenticate": 'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"' } });
      },
      { registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com", auth: { username: "AWS", password: "ecr-token-abcdefghijkl", serverAddress: "123456789012.dkr.ecr.us-east-1.amazonaws.com" } },
    );
    await c.manifest("1", signal());
    expect(seen[1]!.req.headers["Authorization"]).toBe(`Basic ${Buffer.from("AWS:ecr-token-abcdefghijkl").toString("base64")}`);
  });
});

describe("where requests go", () => {
  it("Docker Hub's names go to registry-1.docker.io over HTTPS", async () => {
    const urls: string[] = [];
    const { c } = client(async (url) => (urls.push(url.href), manifestAnswer()), { registry: "docker.io", path: "library/redis" });
    await c.manifest("7", signal());
    expect(urls).toEqual(["https://registry-1.docker.io/v2/library/redis/manifests/7"]);
  });

  it("Docker Hub is secure whatever its address (dockerd's IndexConfigs always hold docker.io, secure)", async () => {
    const seen: Seen[] = [];
    const { c } = client(
      async (url, req) => {
        seen.push({ url: url.href, req });
        throw Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" });
      },
      { registry: "docker.io", path: "library/redis" },
      { lookup: async () => ["127.0.0.10"], registryConfig: async () => ({ indexConfigs: { "docker.io": { secure: true } }, insecureRegistryCIDRs: ["127.0.0.0/8"] }) },
    );
    const err = await c.manifest("7", signal()).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("registry_unreachable");
    expect(seen.map((s) => [s.url, s.req.insecureTls ?? false])).toEqual([["https://registry-1.docker.io/v2/library/redis/manifests/7", false]]);
  });

  it("a registry dockerd lists as insecure: HTTPS without verification first, then plain HTTP when HTTPS does not answer", async () => {
    const seen: Seen[] = [];
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.2:443"), { code: "ECONNREFUSED" });
    const { c } = client(
      async (url, req) => {
        seen.push({ url: url.href, req });
        if (url.protocol === "https:") throw refused;
        return manifestAnswer();
      },
      {},
      { registryConfig: async () => ({ indexConfigs: { "ghcr.io": { secure: false } }, insecureRegistryCIDRs: [] }) },
    );
    await c.manifest("1", signal());
    await c.manifest("1", signal());
    expect(seen.map((s) => [s.url, s.req.insecureTls ?? false])).toEqual([
      ["https://ghcr.io/v2/acme/app/manifests/1", true],
      ["http://ghcr.io/v2/acme/app/manifests/1", false],
      ["http://ghcr.io/v2/acme/app/manifests/1", false],
    ]);
  });

  it("a registry whose address is inside InsecureRegistryCIDRs (loopback by default) is insecure too", async () => {
    const urls: string[] = [];
    const { c } = client(
      async (url) => {
        urls.push(url.href);
        if (url.protocol === "https:") throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
        return manifestAnswer();
      },
      { registry: "registry.internal:5000" },
      { lookup: async () => ["127.0.0.1"] },
    );
    await c.manifest("1", signal());
    expect(urls).toEqual(["https://registry.internal:5000/v2/acme/app/manifests/1", "http://registry.internal:5000/v2/acme/app/manifests/1"]);
  });

  it("a secure registry never falls back to plain HTTP: registry_unreachable with the network's words", async () => {
    const urls: string[] = [];
    const { c } = client(async (url) => {
      urls.push(url.href);
      throw Object.assign(new Error("getaddrinfo ENOTFOUND ghcr.io"), { code: "ENOTFOUND" });
    });
    const err = await c.manifest("1", signal()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe("registry_unreachable");
    expect((err as AgentError).message).toBe("GET https://ghcr.io/v2/acme/app/manifests/1: getaddrinfo ENOTFOUND ghcr.io");
    expect(urls).toHaveLength(1);
  });

  it("a registry that never answers: registry_unreachable after the time-out", async () => {
    const { c } = client(
      (_url, req) => new Promise((_resolve, reject) => req.signal.addEventListener("abort", () => reject(req.signal.reason as Error))),
      {},
      { timeoutMs: 50 },
    );
    const err = await c.manifest("1", signal()).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("registry_unreachable");
    expect((err as AgentError).message).toContain("no answer within");
  });
});

describe("refusals, classified like a pull's", () => {
  it.each([
    ["403 to a credential", 403, "DENIED", "requested access to the resource is denied", true, "image_access_denied"],
    ["401 to an anonymous request (a private image)", 401, "UNAUTHORIZED", "authentication required", false, "image_not_found"],
    ["404", 404, "MANIFEST_UNKNOWN", "manifest unknown", true, "image_not_found"],
    ["429", 429, "TOOMANYREQUESTS", "You have reached your pull rate limit", false, "registry_rate_limited"],
    ["503", 503, "UNAVAILABLE", "service unavailable", true, "registry_unreachable"],
  ] as const)("%s", async (_name, status, code, message, authenticated, expected) => {
    const { c } = client(async () => errors(status, code, message), authenticated ? { auth: { username: "u", password: "p-0123456789ab", serverAddress: "ghcr.io" } } : {});
    const err = await c.manifest("1", signal()).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe(expected);
    // Docker's words for the registry's error: its code in lower case, as words.
    expect((err as AgentError).registryMessage).toBe(`${code.toLowerCase().replace(/_/g, " ")}: ${message}`);
  });

  it("a credential the token server refuses is registry_auth_failed (GHCR answers a wrong PAT there with 403 denied)", async () => {
    const { c } = client(
      async (url) =>
        url.host === "auth.example"
          ? errors(403, "DENIED", "denied")
          : errors(401, "UNAUTHORIZED", "authentication required", { "www-authenticate": 'Bearer realm="https://auth.example/token",service="ghcr.io"' }),
      { auth: { username: "acme-bot", password: "ghp_wrongwrongwrong", serverAddress: "ghcr.io" } },
    );
    const err = await c.manifest("1", signal()).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("registry_auth_failed");
  });
});

describe("what is read", () => {
  it("a manifest larger than 4 MiB is not read", async () => {
    const big = new Uint8Array(4 * 1024 * 1024 + 1);
    const { c } = client(async () => new Response(new ReadableStream({ start: (ctl) => (ctl.enqueue(big), ctl.close()) }), { status: 200 }));
    await expect(c.manifest("1", signal())).rejects.toBeInstanceOf(TooLargeError);
  });

  it("a body that stops coming is registry_unreachable", async () => {
    const { c } = client(
      async () =>
        new Response(
          new ReadableStream({
            start: (ctl) => {
              ctl.enqueue(new Uint8Array(10));
              ctl.error(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
            },
          }),
          { status: 200 },
        ),
    );
    const err = await c.blob(`sha256:${"3".repeat(64)}`, 1024, signal()).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("registry_unreachable");
    expect((err as AgentError).message).toBe(`reading the blob sha256:${"3".repeat(64)}: the registry stopped sending it (socket hang up)`);
  });

  it("a manifest asked for by digest whose bytes hash otherwise is digest_mismatch", async () => {
    const { c } = client(async () => manifestAnswer());
    const other = `sha256:${"0".repeat(64)}`;
    const err = await c.manifest(other, signal()).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("digest_mismatch");
  });

  it("a tag whose Docker-Content-Digest is not the bytes' digest is digest_mismatch", async () => {
    const { c } = client(async () => new Response(new Uint8Array(MANIFEST), { status: 200, headers: { "docker-content-digest": `sha256:${"1".repeat(64)}` } }));
    const err = await c.manifest("1", signal()).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("digest_mismatch");
  });

  it("a blob is checked against its digest", async () => {
    const { c } = client(async () => new Response("payload", { status: 200 }));
    const err = await c.blob(`sha256:${"2".repeat(64)}`, 1024, signal()).catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("digest_mismatch");
  });

  it("follows a blob's redirect to a CDN without the registry's credential, and checks what it serves", async () => {
    const payload = Buffer.from("payload");
    const digest = `sha256:${createHash("sha256").update(payload).digest("hex")}`;
    const seen: Seen[] = [];
    const { c } = client(
      async (url, req) => {
        seen.push({ url: url.href, req });
        if (url.host === "cdn.example") return new Response(new Uint8Array(payload), { status: 200 });
        if (!req.headers["Authorization"]) return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
        return new Response(null, { status: 307, headers: { location: `https://cdn.example/blobs/${digest}?X-Amz-Signature=abc` } });
      },
      { auth: { username: "AWS", password: "ecr-token-abcdefghijkl", serverAddress: "ghcr.io" } },
    );
    expect(await c.blob(digest, 1024, signal())).toEqual(payload);
    expect(seen.map((s) => [s.url, s.req.headers["Authorization"] !== undefined])).toEqual([
      [`https://ghcr.io/v2/acme/app/blobs/${digest}`, false],
      [`https://ghcr.io/v2/acme/app/blobs/${digest}`, true],
      [`https://cdn.example/blobs/${digest}?X-Amz-Signature=abc`, false],
    ]);
  });

  // A Link header is the registry's to write: a next page on another host (or a
  // protocol-relative `//host/…`) would take the credential there; paging stops instead.
  it.each([["//evil.example/v2/acme/app/referrers/sha256:x?n=2"], ["https://evil.example/v2/acme/app/referrers/sha256:x?n=2"]])(
    "never follows a Link to another host (%s) with the credential",
    async (next) => {
      const hosts: string[] = [];
      const { c } = client(async (url) => {
        hosts.push(url.host);
        return new Response(JSON.stringify({ schemaVersion: 2, manifests: [] }), { status: 200, headers: { link: `<${next}>; rel="next"` } });
      });
      expect(await c.referrers("sha256:x", signal())).toEqual([]);
      expect(hosts).toEqual(["ghcr.io"]);
    },
  );

  it("follows a relative Link (?page=2) on the same registry", async () => {
    const urls: string[] = [];
    const { c } = client(async (url) => {
      urls.push(url.pathname + url.search);
      return new Response(JSON.stringify({ schemaVersion: 2, manifests: [] }), { status: 200, headers: url.search ? {} : { link: `<?page=2>; rel="next"` } });
    });
    expect(await c.referrers("sha256:x", signal())).toEqual([]);
    expect(urls).toEqual(["/v2/acme/app/referrers/sha256:x", "/v2/acme/app/referrers/sha256:x?page=2"]);
  });

  it("follows the referrers' Link: rel=next, absolute or not", async () => {
    const urls: string[] = [];
    const page = (n: number, next?: string) =>
      new Response(JSON.stringify({ schemaVersion: 2, manifests: [{ digest: `sha256:${String(n).repeat(64)}`, artifactType: "x" }] }), { status: 200, headers: next ? { link: `<${next}>; rel="next"` } : {} });
    const { c } = client(async (url) => {
      urls.push(url.pathname + url.search);
      if (!url.search) return page(1, "https://ghcr.io/v2/acme/app/referrers/sha256:x?n=2");
      if (url.search === "?n=2") return page(2, "/v2/acme/app/referrers/sha256:x?n=3");
      return page(3);
    });
    const listed = await c.referrers("sha256:x", signal());
    expect(listed?.map((d) => d.digest[7])).toEqual(["1", "2", "3"]);
    expect(urls).toEqual(["/v2/acme/app/referrers/sha256:x", "/v2/acme/app/referrers/sha256:x?n=2", "/v2/acme/app/referrers/sha256:x?n=3"]);
  });
});
