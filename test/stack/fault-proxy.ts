// A registry front that misbehaves on purpose, in front of a real registry:
// - `stall`: serves the manifest and config, then sends half of every layer
//   blob and holds the connection open without another byte;
// - `flaky`: answers manifest requests of a repository with 503 as many times
//   as a test asked (POST /__fault/manifest-5xx?repo=NAME&count=N), then proxies;
//   `&status=429` answers Docker Hub's rate-limit error instead.
// dockerd retries blob 5xx itself, so only manifest errors reach the agent.
import http from "node:http";

export type FaultMode = "stall" | "flaky";

export interface FaultProxy {
  address: string;
  stop(): Promise<void>;
}

const FAULT_ERRORS: Record<429 | 503, { code: string; message: string; detail?: string }> = {
  503: { code: "UNAVAILABLE", message: "service unavailable", detail: "injected" },
  // Docker Hub's words for an exhausted pull limit.
  429: { code: "TOOMANYREQUESTS", message: "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit" },
};

export async function startFaultProxy(mode: FaultMode, address: string, upstream: string): Promise<FaultProxy> {
  const failures = new Map<string, { count: number; status: 429 | 503 }>();
  const held = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    if (req.method === "POST" && url.pathname === "/__fault/manifest-5xx") {
      const status = url.searchParams.get("status") === "429" ? 429 : 503;
      failures.set(url.searchParams.get("repo") ?? "", { count: Number(url.searchParams.get("count") ?? "1"), status });
      res.writeHead(204).end();
      return;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/[^/]+$/.exec(url.pathname);
    const fault = manifest ? failures.get(manifest[1]!) : undefined;
    if (mode === "flaky" && manifest && fault && fault.count > 0) {
      fault.count--;
      res.writeHead(fault.status, { "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [FAULT_ERRORS[fault.status]] }));
      return;
    }
    const blob = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/.test(url.pathname);
    const up = http.request(
      { host: upstream, port: 80, method: req.method, path: req.url, headers: { ...req.headers, host: upstream } },
      (upRes) => {
        const isLayer = mode === "stall" && blob && req.method === "GET" && Number(upRes.headers["content-length"] ?? 0) > 4096;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (!isLayer) {
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
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.on("connection", (s) => s.setNoDelay(true));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(80, address, resolve);
  });
  return {
    address,
    async stop() {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
