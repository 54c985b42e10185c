// A plain-HTTP answer on port 443 of a plain-HTTP registry's address. The
// containerd image store of Docker 26 (containerd 1.7's resolver) tries HTTPS
// first and falls back to HTTP only when the TLS handshake meets an HTTP
// reply; a refused connection on 443 ends the pull with "connect: connection
// refused" instead. Node's HTTP server answers a TLS ClientHello with
// "400 Bad Request", which is exactly such a reply.
import http from "node:http";

export interface HttpsRefuser {
  stop(): Promise<void>;
}

export async function startHttpsRefuser(address: string): Promise<HttpsRefuser> {
  const server = http.createServer((_req, res) => res.writeHead(400).end());
  server.on("connection", (s) => s.setNoDelay(true));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(443, address, resolve);
  });
  return {
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
