// Which requests of the agent's own go through a proxy (SPEC §4): HTTPS_PROXY
// for https:// targets, HTTP_PROXY for http:// ones (the lower-case spelling
// first, as curl and Node read them), except where NO_PROXY matches. The
// tunnelling itself is Node's (an Agent with `proxyEnv`: CONNECT for https://,
// the absolute form for http://); the decision is made here, once, so that what
// check-credential says is what the requests do. Node's own NO_PROXY matching
// is not curl's: a bare `example.com` matches only itself there (curl: the
// domain and every name under it), and CIDR entries are ignored; here they are
// curl's rules (curl's lib/noproxy.c, CIDR since 7.86) plus SPEC's ports:
// - `*` alone: nothing is proxied;
// - `example.com`, `.example.com`, `*.example.com`: that name and every name under it;
// - `10.0.0.0/8`, `fd00::/8`: a target written as an address inside that range
//   (names are never resolved to decide: curl does not either);
// - an address: that address; any entry with `:port` (`[::1]:8080`): on that port only.
// The instance metadata service is never proxied, whatever the variables say:
// its credentials are the box's own, and a proxy would see them. The SDK asks it
// with requests of its own that never use these agents; the rule here keeps
// every other path honest too.
import type { Agent } from "node:http";
import { BlockList, isIP } from "node:net";

export type Route =
  | { via: "proxy"; proxy: URL; /** The proxy without user or password, for messages. */ shown: string; /** The variable it came from. */ variable: string }
  | { via: "direct"; /** Why not through a proxy, in words for a person. */ why: string };

/** A route in words: "through the proxy http://proxy:3128 (HTTPS_PROXY)", "directly: NO_PROXY entry … matches". */
export function routeWords(route: Route): string {
  return route.via === "proxy" ? `through the proxy ${route.shown} (${route.variable})` : `directly: ${route.why}`;
}

interface NoProxyEntry {
  /** A name (matched with the names under it), an address, or a CIDR range in `range`. */
  host: string;
  range?: BlockList;
  port?: number;
}

/** An environment variable that names a proxy but is not a usable proxy URL. */
export class ProxyConfigError extends Error {
  readonly variable: string;

  constructor(variable: string, message: string) {
    super(message);
    this.name = "ProxyConfigError";
    this.variable = variable;
  }
}

const DEFAULT_PORT: Record<string, number> = { "http:": 80, "https:": 443 };

/** A host as written in a URL or an entry, compared as written: lower case, no brackets, no trailing dot. */
function bareHost(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
}

function parseEntry(raw: string): NoProxyEntry | undefined {
  let s = raw.trim().toLowerCase();
  if (!s) return undefined;
  let port: number | undefined;
  // `[v6]:port`, `name:port`, `v4:port`; a bare IPv6 address's colons are not a port.
  const withPort = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(s);
  if (withPort) {
    s = withPort[1]!;
    port = Number(withPort[2]);
  }
  s = bareHost(s).replace(/^\*?\./, "");
  const slash = s.indexOf("/");
  if (slash > 0) {
    const address = s.slice(0, slash);
    const bits = Number(s.slice(slash + 1));
    const family = isIP(address);
    if (!family || !Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) return undefined;
    const range = new BlockList();
    range.addSubnet(address, bits, family === 4 ? "ipv4" : "ipv6");
    return { host: s, range, ...(port !== undefined ? { port } : {}) };
  }
  return { host: s, ...(port !== undefined ? { port } : {}) };
}

function matches(entry: NoProxyEntry, host: string, port: number): boolean {
  if (entry.port !== undefined && entry.port !== port) return false;
  const family = isIP(host);
  if (entry.range) return family !== 0 && entry.range.check(host, family === 4 ? "ipv4" : "ipv6");
  if (family) return isIP(entry.host) !== 0 && sameAddress(entry.host, host);
  return host === entry.host || host.endsWith(`.${entry.host}`);
}

/** Two addresses, however written (`::1` and `0:0::1`). */
function sameAddress(a: string, b: string): boolean {
  const fa = isIP(a);
  if (fa !== isIP(b)) return false;
  const list = new BlockList();
  list.addAddress(a, fa === 4 ? "ipv4" : "ipv6");
  return list.check(b, fa === 4 ? "ipv4" : "ipv6");
}

/** The first set variable of `names`, as [name, value]. */
function firstSet(env: Record<string, string | undefined>, names: string[]): [string, string] | undefined {
  for (const n of names) {
    const v = env[n]?.trim();
    if (v) return [n, v];
  }
  return undefined;
}

function parseProxy(variable: string, value: string): URL {
  // curl takes a proxy without a scheme as http://.
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  if (!URL.canParse(text)) throw new ProxyConfigError(variable, `${variable} is not a proxy URL (expected http://host:port or https://host:port)`);
  const url = new URL(text);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ProxyConfigError(variable, `${variable} names a ${url.protocol.slice(0, -1)}:// proxy; the agent speaks to HTTP proxies only (http:// or https://)`);
  }
  return url;
}

export class ProxyRoutes {
  private readonly proxies = new Map<string, { url: URL; variable: string }>();
  private readonly noProxy: NoProxyEntry[];
  private readonly noProxyAll: boolean;
  private readonly noProxyVariable: string;
  /** Never proxied: the instance metadata service, on any port at its own addresses, on its port at a configured one. */
  private readonly never: { host: string; port?: number }[];
  private readonly agents = new Map<string, Promise<Agent>>();

  /** Throws a ProxyConfigError for a proxy variable that is not an HTTP proxy's URL. */
  constructor(env: Record<string, string | undefined>, imdsEndpoint?: string) {
    for (const [protocol, names] of [
      ["https:", ["https_proxy", "HTTPS_PROXY"]],
      ["http:", ["http_proxy", "HTTP_PROXY"]],
    ] as const) {
      const set = firstSet(env, [...names]);
      if (set) this.proxies.set(protocol, { url: parseProxy(set[0], set[1]), variable: set[0] });
    }
    const no = firstSet(env, ["no_proxy", "NO_PROXY"]);
    this.noProxyVariable = no?.[0] ?? "NO_PROXY";
    const entries = (no?.[1] ?? "").split(/[,\s]+/);
    this.noProxyAll = entries.some((e) => e.trim() === "*");
    this.noProxy = entries.flatMap((e) => parseEntry(e) ?? []);
    this.never = [{ host: "169.254.169.254" }, { host: "fd00:ec2::254" }];
    if (imdsEndpoint && URL.canParse(imdsEndpoint)) {
      const u = new URL(imdsEndpoint);
      this.never.push({ host: bareHost(u.hostname), port: Number(u.port || DEFAULT_PORT[u.protocol] || 80) });
    }
  }

  /** True when any proxy variable is set: without one, every request goes as it always did. */
  get any(): boolean {
    return this.proxies.size > 0;
  }

  /** Where a request to `target` goes. */
  route(target: string | URL): Route {
    const url = typeof target === "string" ? new URL(target) : target;
    const host = bareHost(url.hostname);
    const port = Number(url.port || DEFAULT_PORT[url.protocol]);
    const isImds = (n: { host: string; port?: number }) => (n.port === undefined || n.port === port) && (isIP(n.host) && isIP(host) ? sameAddress(n.host, host) : n.host === host);
    if (this.never.some(isImds)) return { via: "direct", why: "the instance metadata service is never proxied" };
    const proxy = this.proxies.get(url.protocol);
    const names = url.protocol === "https:" ? "HTTPS_PROXY" : "HTTP_PROXY";
    if (!proxy) return { via: "direct", why: `no proxy is set (${names} nor ${names.toLowerCase()})` };
    if (this.noProxyAll) return { via: "direct", why: `${this.noProxyVariable} is *` };
    const hit = this.noProxy.find((e) => matches(e, host, port));
    if (hit) return { via: "direct", why: `${this.noProxyVariable} entry ${hit.host}${hit.port !== undefined ? `:${hit.port}` : ""} matches` };
    return { via: "proxy", proxy: proxy.url, shown: `${proxy.url.protocol}//${proxy.url.host}`, variable: proxy.variable };
  }

  /** The users and passwords in the proxy URLs: secrets like any other (the scrubber pins them). */
  secrets(): string[] {
    return [...this.proxies.values()].flatMap(({ url }) => [url.username, url.password].filter(Boolean).map((s) => decodeURIComponent(s)));
  }

  /**
   * The agent for requests to `target`: one per protocol and route, kept alive
   * between requests. A proxied one is Node's own, told of this one proxy and no
   * NO_PROXY: the decision was made here.
   */
  agentFor(target: string | URL): Promise<Agent> {
    const url = typeof target === "string" ? new URL(target) : target;
    const route = this.route(url);
    return this.agent(url.protocol === "https:" ? "https:" : "http:", route.via === "proxy" ? route.proxy : undefined);
  }

  /** The proxied agents, by protocol, for those protocols that have a proxy (the AWS SDK's request handler takes them). */
  async proxiedAgents(): Promise<{ httpAgent?: Agent; httpsAgent?: Agent }> {
    const http = this.proxies.get("http:");
    const https = this.proxies.get("https:");
    return {
      ...(http ? { httpAgent: await this.agent("http:", http.url) } : {}),
      ...(https ? { httpsAgent: await this.agent("https:", https.url) } : {}),
    };
  }

  private agent(protocol: "http:" | "https:", proxy: URL | undefined): Promise<Agent> {
    const key = `${protocol} ${proxy?.href ?? "direct"}`;
    let a = this.agents.get(key);
    if (!a) {
      // node:https loads TLS: only when a request needs it (the idle daemon's memory).
      a = (protocol === "https:" ? import("node:https") : import("node:http")).then(
        (m) =>
          new m.Agent({
            keepAlive: true,
            ...(proxy ? { proxyEnv: protocol === "https:" ? { HTTPS_PROXY: proxy.href } : { HTTP_PROXY: proxy.href } } : {}),
          }),
      );
      this.agents.set(key, a);
    }
    return a;
  }
}

/**
 * Node's global agents, made plain again where NODE_USE_ENV_PROXY=1 made them
 * proxy: they carry every request that names no agent of its own — the AWS SDK's
 * to the instance metadata service among them — and would send it through the
 * proxy under Node's own NO_PROXY rules. The agent's own requests choose their
 * agents here; nothing else of the agent's should go through a proxy.
 */
export async function plainGlobalAgents(env: Record<string, string | undefined>): Promise<void> {
  if (!env["NODE_USE_ENV_PROXY"]) return;
  const [{ default: http }, { default: https }] = await Promise.all([import("node:http"), import("node:https")]);
  http.globalAgent = new http.Agent({ keepAlive: true });
  https.globalAgent = new https.Agent({ keepAlive: true });
}
