// The registry client's ports on a real box: Node's HTTP over the agent's proxy
// routes, dockerd's RegistryConfig, the system's resolver (or the one given).
import { lookup as dnsLookup } from "node:dns";
import type { LookupFunction } from "node:net";
import type { RegistryConfig } from "../docker/port.ts";
import type { ProxyRoutes } from "../net/proxy.ts";
import type { RegistryClientDeps } from "./client.ts";
import { createRegistryFetch } from "./transport.ts";

export interface NodeRegistryOptions {
  routes: ProxyRoutes;
  /** dockerd's GET /info RegistryConfig (DockerPort.registryConfig). */
  registryConfig: (signal: AbortSignal) => Promise<RegistryConfig>;
  scrubber: { add(secret: string): void };
  /** dockerd's per-registry certificates (default /etc/docker/certs.d). */
  certsDir?: string;
  /** How names resolve, for the requests and for InsecureRegistryCIDRs (default: the system's, as dockerd's). */
  lookup?: LookupFunction;
  timeoutMs?: number;
}

export function nodeRegistryDeps(opts: NodeRegistryOptions): RegistryClientDeps {
  const lookup = opts.lookup ?? (dnsLookup as LookupFunction);
  return {
    fetch: createRegistryFetch({ routes: opts.routes, ...(opts.certsDir ? { certsDir: opts.certsDir } : {}), ...(opts.lookup ? { lookup: opts.lookup } : {}) }),
    registryConfig: opts.registryConfig,
    lookup: (host) =>
      new Promise((resolve, reject) =>
        lookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve((addresses as { address: string }[]).map((a) => a.address)))),
      ),
    scrubber: opts.scrubber,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
  };
}
