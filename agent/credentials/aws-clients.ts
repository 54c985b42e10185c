// The real AWS ports: SDK v3 clients over the standard credential chain (on a
// box it ends at the instance profile via IMDSv2). Loaded only when a credential
// needs them, so that anonymous and warm bakes pay nothing for the SDK. Every
// request is bounded by the SDK's NodeHttpHandler options: CONNECT_TIMEOUT_MS to
// connect, REQUEST_TIMEOUT_MS in all, so that an endpoint that never answers
// costs seconds, not the kernel's two minutes of SYN retries; the resolver
// retries such failures within its own budget (resolve.ts). A failure names the
// endpoint that failed: the service's, as the SDK resolved it (an
// AWS_ENDPOINT_URL_* value included), or the instance metadata service's.
import net from "node:net";
import { raceAbort } from "../abort.ts";
import type { Clock, Random } from "../clock.ts";
import type { Config } from "../config.ts";
import { AgentError } from "../errors/agent-error.ts";
import type { Scrubber } from "../errors/scrub.ts";
import type { EcrHost } from "../spec/registry.ts";
import { isProviderError, networkWords } from "./aws-error.ts";
import type { ProxyRoutes } from "../net/proxy.ts";
import { proxiedHandler } from "./proxied-handler.ts";
import { SpreadRetryStrategy } from "./retry-strategy.ts";
import { AwsCallError, type AwsPorts, type EcrToken, type ParameterValue } from "./types.ts";

/** Attempts for the SDK's own retry modes (kept for comparison, docs/fleet.md); these retry network failures and 5xx too, so the resolver does not (runtime.ts). */
const SDK_MAX_ATTEMPTS = 10;
/** How long one attempt may take to connect (docs/reference.md §5: "each connection attempt bounded to a few seconds"). */
const CONNECT_TIMEOUT_MS = 3000;
/** How long one attempt may take in all: AWS answers GetParameter and GetAuthorizationToken in well under a second. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** The SDK's own bound on each request to the instance metadata service. */
const IMDS_TIMEOUT_MS = 1000;

const sdk = () => import("./aws-sdk.ts");

/** An endpoint as it is shown: scheme, host, port and path, never a user or password someone put in the URL. */
function shown(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`.replace(/\/+$/, "");
}

/** Where the SDK asks for the instance role's credentials (its own rule: the variable, else the mode's address). */
export function imdsEndpoint(env: Record<string, string | undefined>): string {
  const configured = env["AWS_EC2_METADATA_SERVICE_ENDPOINT"]?.trim();
  if (configured) return URL.canParse(configured) ? shown(new URL(configured)) : configured.replace(/\/+$/, "");
  return env["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"]?.toLowerCase() === "ipv6" ? "http://[fd00:ec2::254]" : "http://169.254.169.254";
}

async function imdsRegion(env: Record<string, string | undefined>): Promise<string> {
  const { MetadataService } = await sdk();
  const svc = new MetadataService({ httpOptions: { timeout: 2000 } });
  try {
    return (await svc.request("/latest/meta-data/placement/region", {})).trim();
  } catch (err) {
    throw new AgentError(
      "aws_credentials_unavailable",
      `cannot determine the AWS region for SSM: neither awsRegion nor AWS_REGION is set, and IMDSv2 placement/region at ${imdsEndpoint(env)} failed: ${networkWords(err)}`,
      { cause: err },
    );
  }
}

/** SSM region: config, else AWS_REGION, else the instance's region from IMDSv2. */
async function ssmRegion(config: Config, env: Record<string, string | undefined>): Promise<string> {
  return config.awsRegion ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? (await imdsRegion(env));
}

/** The SDK's retry settings for the configured strategy; `spread` draws its waits' jitter and counts its deadline by the runtime's ports. */
function retrySettings(config: Config, chance: Chance) {
  if (config.awsRetryStrategy === "spread") return { retryStrategy: new SpreadRetryStrategy(config.awsMaxWaitSeconds * 1000, chance.clock.now, chance.random) };
  return { retryMode: config.awsRetryStrategy, maxAttempts: SDK_MAX_ATTEMPTS };
}

/**
 * The ECR API endpoint's kind follows the registry host's: a FIPS or dual-stack
 * registry gets its token from the FIPS or dual-stack API. An endpoint the
 * operator configured (AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL) is used as it is:
 * the SDK refuses FIPS or dual-stack beside a custom endpoint.
 */
export function ecrClientSettings(host: EcrHost, env: Record<string, string | undefined>) {
  const ignored = env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]?.toLowerCase() === "true";
  const configured = !ignored && Boolean(env["AWS_ENDPOINT_URL_ECR"] || env["AWS_ENDPOINT_URL"]);
  return { region: host.region, ...(configured ? {} : { useFipsEndpoint: host.fips, useDualstackEndpoint: host.dualStack }) };
}

/** The parts of a resolved SDK client config that decide where its requests go. */
interface EndpointConfig {
  region: () => Promise<string>;
  useFipsEndpoint: () => Promise<boolean>;
  useDualstackEndpoint: () => Promise<boolean>;
  serviceConfiguredEndpoint?: () => Promise<string | undefined>;
  endpointProvider: (params: { Region: string; UseFIPS: boolean; UseDualStack: boolean; Endpoint?: string }) => { url: URL };
}

/** The endpoint a client's requests go to, decided as the SDK decides it: an AWS_ENDPOINT_URL_* value, else the service's rules for region, FIPS and dual-stack. */
export async function resolvedEndpoint(client: { config: EndpointConfig }): Promise<string> {
  const c = client.config;
  const configured = await c.serviceConfiguredEndpoint?.();
  const params = { Region: await c.region(), UseFIPS: await c.useFipsEndpoint(), UseDualStack: await c.useDualstackEndpoint() };
  return shown(c.endpointProvider(configured ? { ...params, Endpoint: configured } : params).url);
}

/** A TCP connection to `endpoint` within `signal`: what /readyz asks of the SSM endpoint (no API call, nothing against the quota). */
function connectProbe(endpoint: string, signal: AbortSignal): Promise<void> {
  const url = new URL(endpoint);
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const done = (err?: Error) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => done(Object.assign(new Error(`no connection to ${endpoint} in time`), { name: "TimeoutError" }));
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => done());
    socket.once("error", (err) => done(err));
  });
}

type SdkModule = typeof import("./aws-sdk.ts");
type SsmClient = import("./aws-sdk.ts").SSMClient;
type EcrClient = import("./aws-sdk.ts").ECRClient;

type RoleCredentials = () => ReturnType<ReturnType<SdkModule["fromNodeProviderChain"]>>;

/**
 * The instance role's credentials, from one memoized provider both clients share (one IMDS
 * round per role session); `scrubber` learns them the moment the SDK resolves them, and again
 * at each refresh.
 */
function roleCredentials(scrubber: Scrubber): RoleCredentials {
  const chain = sdk().then((m) => m.fromNodeProviderChain());
  // Started early on purpose; a failure surfaces where it is awaited, not as an unhandled rejection.
  chain.catch(() => undefined);
  // The provider builds its memoized chain only after an `await import()` in its first call
  // (the SDK's ESM build): two first calls at once would each build a chain and each ask IMDS
  // (measured: SSM and ECR clients together, two credential rounds). Later calls wait for the first.
  let first: Promise<unknown> | undefined;
  const provide = async (provider: Awaited<typeof chain>) => {
    if (!first) {
      const p = provider();
      first = p.catch(() => undefined);
      return p;
    }
    await first;
    return provider();
  };
  const fromChain = async () => {
    const [m, provider] = await Promise.all([sdk(), chain]);
    try {
      return await provide(provider);
    } catch (err) {
      // The chain's own last words ("Could not load credentials from any providers") do not say why;
      // the instance metadata service's, asked once more, do: no answer, a refusal, no role. Only its
      // words are used: where IMDS answers now, the chain's failure stands (it may have been told to
      // leave IMDS alone, AWS_EC2_METADATA_DISABLED), and the next attempt goes through the chain.
      if (!(isProviderError(err) && /from any providers/.test((err as Error).message))) throw err;
      await m.fromInstanceMetadata({ timeout: IMDS_TIMEOUT_MS, maxRetries: 0 })();
      throw err;
    }
  };
  return async () => {
    const c = await fromChain();
    scrubber.addRoleCredentials(c);
    return c;
  };
}

/** SSM's client and ECR's (one per region and endpoint kind), each created on first use. */
function awsClients(config: Config, env: Record<string, string | undefined>, credentials: RoleCredentials, ports: AwsPortsDeps) {
  const { routes } = ports;
  let ssm: Promise<SsmClient> | undefined;
  const ecrClients = new Map<string, Promise<EcrClient>>();
  const clientSettings = async () => ({
    credentials,
    requestHandler: await proxiedHandler(
      (await sdk()).NodeHttpHandler,
      { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true },
      routes,
    ),
    ...retrySettings(config, ports),
  });
  return {
    // A client whose creation failed (no region from IMDS) is created anew on the next call, not failed for ever.
    ssm(): Promise<SsmClient> {
      if (!ssm) {
        const p = (async () => {
          const [{ SSMClient }, region, settings] = await Promise.all([sdk(), ssmRegion(config, env), clientSettings()]);
          return new SSMClient({ region, ...settings });
        })();
        ssm = p;
        p.catch(() => ssm === p && (ssm = undefined));
      }
      return ssm;
    },
    ecr(host: EcrHost): Promise<EcrClient> {
      const key = `${host.region} ${host.fips} ${host.dualStack}`;
      let c = ecrClients.get(key);
      if (!c) {
        c = Promise.all([sdk(), clientSettings()]).then(([{ ECRClient }, settings]) => new ECRClient({ ...ecrClientSettings(host, env), ...settings }));
        ecrClients.set(key, c);
      }
      return c;
    },
  };
}

/** One call through `client`, its failure carrying the endpoint that failed (`imds` where the role's credentials did) and the SDK's attempts. */
async function call<C extends { config: EndpointConfig }, T>(imds: string, client: Promise<C>, send: (c: C, m: SdkModule) => Promise<T>, signal: AbortSignal): Promise<T> {
  const [c, m] = await Promise.all([client, sdk()]);
  try {
    return await raceAbort(send(c, m), signal);
  } catch (err) {
    if (signal.aborted || err instanceof AgentError) throw err;
    const where = isProviderError(err) ? imds : await resolvedEndpoint(c);
    throw new AwsCallError(err, where, (err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1);
  }
}

/** One step of /readyz's check within `signal`: its failure names where, in the network's words. */
async function readyStep<T>(where: string, p: Promise<T>, signal: AbortSignal): Promise<T> {
  p.catch(() => undefined);
  try {
    return await raceAbort(p, signal);
  } catch (err) {
    throw new Error(`${where}: ${signal.aborted ? "no answer in time" : networkWords(err)}`, { cause: err });
  }
}

/** The role's credentials obtainable and, with `ssm`, the SSM endpoint (or the proxy in front of it) taking a connection. */
async function checkReachable(
  parts: { imds: string; credentials: RoleCredentials; ssmEndpoint: () => Promise<string>; routes: ProxyRoutes },
  signal: AbortSignal,
  opts: { ssm: boolean },
): Promise<void> {
  await readyStep(`no credentials for the instance role from ${parts.imds}`, parts.credentials(), signal);
  if (!opts.ssm) return;
  const endpoint = await readyStep("no SSM client", parts.ssmEndpoint(), signal);
  const route = parts.routes.route(endpoint);
  // Behind a proxy the box reaches the proxy, not the endpoint: the proxy is what must take a connection.
  if (route.via === "proxy") await readyStep(`SSM endpoint ${endpoint} through the proxy ${route.shown}`, connectProbe(route.shown, signal), signal);
  else await readyStep(`SSM endpoint ${endpoint}`, connectProbe(endpoint, signal), signal);
}

/** GetParameter's Parameter as AWS answered it; undefined without one. */
async function sendGetParameter(client: SsmClient, { GetParameterCommand }: SdkModule, name: string, signal: AbortSignal): Promise<ParameterValue | undefined> {
  const out = await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal: signal });
  const p = out.Parameter;
  return p && { ...(p.Type !== undefined ? { type: p.Type } : {}), ...(p.Value !== undefined ? { value: p.Value } : {}) };
}

/** GetAuthorizationToken's first authorizationData as AWS answered it; undefined without one. */
async function sendGetEcrToken(client: EcrClient, { GetAuthorizationTokenCommand }: SdkModule, host: EcrHost, signal: AbortSignal): Promise<EcrToken | undefined> {
  const out = await client.send(new GetAuthorizationTokenCommand({ registryIds: [host.accountId] }), { abortSignal: signal });
  const data = out.authorizationData?.[0];
  return (
    data && {
      ...(data.authorizationToken !== undefined ? { authorizationToken: data.authorizationToken } : {}),
      ...(data.expiresAt ? { expiresAt: data.expiresAt } : {}),
    }
  );
}

/** Time and chance of the throttling retries. */
interface Chance {
  clock: Clock;
  random: Random;
}

export interface AwsPortsDeps extends Chance {
  /** Learns the instance role's credentials the moment the SDK resolves them, and again at each refresh. */
  scrubber: Scrubber;
  /** Which of SSM's and ECR's requests go through a proxy; the instance metadata service's never do. */
  routes: ProxyRoutes;
}

export function createAwsPorts(config: Config, env: Record<string, string | undefined>, deps: AwsPortsDeps): AwsPorts {
  const { routes } = deps;
  const imds = imdsEndpoint(env);
  const credentials = roleCredentials(deps.scrubber);
  const clients = awsClients(config, env, credentials, deps);
  const endpointOf: AwsPorts["endpointOf"] = async (target) => resolvedEndpoint(await (target.service === "ssm" ? clients.ssm() : clients.ecr(target.host)));
  return {
    imdsEndpoint: imds,
    endpointOf,
    checkReachable: (signal, opts) => checkReachable({ imds, credentials, ssmEndpoint: () => endpointOf({ service: "ssm" }), routes }, signal, opts),
    getParameter: (name, signal) => call(imds, clients.ssm(), (client, m) => sendGetParameter(client, m, name, signal), signal),
    getEcrToken: (host, signal) => call(imds, clients.ecr(host), (client, m) => sendGetEcrToken(client, m, host, signal), signal),
  };
}
