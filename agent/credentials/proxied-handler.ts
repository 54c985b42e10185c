// The AWS SDK's request handler where a proxy is set: the SDK ignores
// HTTPS_PROXY (its agents are plain ones), so it gets two NodeHttpHandlers with
// the same bounds, one over the proxied agents and one as the SDK would make it,
// and each request goes to the one its route names (net/proxy.ts).
import type { NodeHttpHandler, NodeHttpHandlerOptions } from "@smithy/node-http-handler";
import type { ProxyRoutes } from "../net/proxy.ts";

/** What the SDK asks of a request handler (HttpHandler of @smithy/core). */
export type RequestHandler = Pick<NodeHttpHandler, "metadata" | "handle" | "updateHttpClientConfig" | "httpHandlerConfigs" | "destroy">;

/** Where a request of the SDK goes, as a URL's origin. */
export function requestOrigin(r: { protocol: string; hostname: string; port?: number | undefined }): string {
  const host = r.hostname.includes(":") && !r.hostname.startsWith("[") ? `[${r.hostname}]` : r.hostname;
  return `${r.protocol}//${host}${r.port ? `:${r.port}` : ""}`;
}

/** `options` as they are where no proxy is set; else a handler that routes each request. */
export async function proxiedHandler(
  Handler: typeof NodeHttpHandler,
  options: NodeHttpHandlerOptions,
  routes: ProxyRoutes,
): Promise<NodeHttpHandlerOptions | RequestHandler> {
  if (!routes.any) return options;
  const direct = new Handler(options);
  const proxied = new Handler({ ...options, ...(await routes.proxiedAgents()) });
  return {
    metadata: direct.metadata,
    handle: (request, opts) => (routes.route(requestOrigin(request)).via === "proxy" ? proxied : direct).handle(request, opts),
    updateHttpClientConfig: (key, value) => {
      direct.updateHttpClientConfig(key, value);
      proxied.updateHttpClientConfig(key, value);
    },
    httpHandlerConfigs: () => direct.httpHandlerConfigs(),
    destroy: () => {
      direct.destroy();
      proxied.destroy();
    },
  };
}
