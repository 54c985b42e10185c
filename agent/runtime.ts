// The composition root: every part of the agent is built here from the
// configuration (real Docker, AWS, the proxy routes, the outbox and its
// delivery, the reporter), and the commands and the daemon take them from here.
import { readFileSync } from "node:fs";
import { systemClock, systemRandom, type Clock, type Random } from "./clock.ts";
import { ConfigError, reportingProblem, type Config } from "./config.ts";
import { DiskReserve, statfsSpace } from "./bake/disk-reserve.ts";
import type { BakeDeps } from "./bake/run.ts";
import { createAwsPorts, imdsEndpoint } from "./credentials/aws-clients.ts";
import { CredentialResolver, type ResolverDeps } from "./credentials/resolve.ts";
import type { AwsPorts } from "./credentials/types.ts";
import { createDockerPort, type DockerPort } from "./docker/port.ts";
import { Scrubber } from "./errors/scrub.ts";
import { createLogger, type Logger } from "./log.ts";
import { ProxyConfigError, ProxyRoutes } from "./net/proxy.ts";
import { Deliverer, httpPoster, type PostEvent } from "./report/deliver.ts";
import { ProgressSender } from "./report/progress-sender.ts";
import { Reporter } from "./report/reporter.ts";
import { Outbox } from "./state/outbox.ts";
import { PulledImages } from "./state/pulled.ts";
import { Verifications } from "./state/verifications.ts";
import { nodeRegistryDeps } from "./registry/node-deps.ts";
import type { SignatureVerifier } from "./signatures/types.ts";
import { createSignatureVerifier } from "./signatures/verifier.ts";

export interface Runtime {
  config: Config;
  env: Record<string, string | undefined>;
  clock: Clock;
  /** The jitter of the outbox delivery's backoff. */
  random: Random;
  scrubber: Scrubber;
  logger: Logger;
  docker: DockerPort;
  aws: () => AwsPorts;
  /** A bake's resolver; the daemon adds its cache and metrics hooks. */
  newResolver: (extra?: Pick<ResolverDeps, "cache" | "onFetch" | "onCacheHit">) => CredentialResolver;
  /**
   * Where events go; set only when the command reports and a control plane is configured
   * (its boxId then is too, reportingProblem): the one test of "reporting configured".
   */
  controlPlane?: ControlPlane;
  /** The disk reserve on Docker's data root, one for every bake of this process: the daemon's bakes start on the data root an earlier one read (bake/disk-reserve.ts). */
  diskReserve: DiskReserve;
  /** The images the agent pulled (image cleanup removes only those). */
  pulled: PulledImages;
  /** Signature verifications already made (docs/reference.md §2a), reused for a pinned digest and the same keys. */
  verifications: Verifications;
  /** Which of the agent's own requests go through a proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). */
  proxy: ProxyRoutes;
  /** A POST to the control plane, through the proxy where one applies. */
  post: PostEvent;
  /** docs/reference.md §2a: checks signatures of images whose services name a policy (the agent's own registry requests). */
  signatureVerifier: () => SignatureVerifier;
}

export interface ControlPlane {
  url: string;
  token: string;
  boxId: string;
}

/** A secret file's text (the token files, the API's certificate and key), trimmed; unreadable or empty is a configuration error naming its key. */
export function readSecretFile(key: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(key, `${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const token = text.trim();
  if (!token) throw new ConfigError(key, `${key}: ${file} is empty`);
  return token;
}

/** One of the two bearer tokens (docs/reference.md §4), read and pinned in the scrubber for the life of the process. */
export function readToken(config: Pick<Config, "controlPlaneTokenFile" | "apiTokenFile">, key: "controlPlaneTokenFile" | "apiTokenFile", scrubber: Scrubber): string {
  const token = readSecretFile(key, config[key]);
  scrubber.pin(token);
  return token;
}

function proxyRoutes(env: Record<string, string | undefined>, scrubber: Scrubber): ProxyRoutes {
  let proxy: ProxyRoutes;
  try {
    proxy = new ProxyRoutes(env, imdsEndpoint(env));
  } catch (err) {
    if (err instanceof ProxyConfigError) throw new ConfigError(err.variable, err.message, err.variable);
    throw err;
  }
  // The proxy's user and password are secrets like any other, for the life of the process.
  for (const s of proxy.secrets()) scrubber.pin(s);
  return proxy;
}

function controlPlaneOf(config: Config, scrubber: Scrubber): ControlPlane | undefined {
  if (!config.controlPlaneUrl) return undefined;
  const problem = reportingProblem(config);
  if (problem) throw problem;
  // reportingProblem answered: a control plane comes with its boxId.
  const boxId = config.boxId as string;
  return { url: config.controlPlaneUrl, token: readToken(config, "controlPlaneTokenFile", scrubber), boxId };
}

/** `report`: the command sends events (the daemon; `bake` without --no-report), so the control plane's settings must be complete. */
export function createRuntime(config: Config, env: Record<string, string | undefined>, opts: { report: boolean; scrubber?: Scrubber }): Runtime {
  const scrubber = opts.scrubber ?? new Scrubber();
  // journald sets JOURNAL_STREAM for a service whose output it takes.
  const logger = createLogger(config.logLevel, scrubber, { journal: env["JOURNAL_STREAM"] !== undefined });
  const proxy = proxyRoutes(env, scrubber);
  let aws: AwsPorts | undefined;
  const clock = systemClock;
  const random = systemRandom;
  const getAws = () => (aws ??= createAwsPorts(config, env, { scrubber, routes: proxy, clock, random }));
  const controlPlane = opts.report ? controlPlaneOf(config, scrubber) : undefined;
  const docker = createDockerPort(config.dockerSocket);
  let verifier: SignatureVerifier | undefined;
  return {
    config,
    env,
    clock,
    random,
    scrubber,
    logger,
    docker,
    aws: getAws,
    newResolver: (extra = {}) =>
      new CredentialResolver({
        aws: getAws,
        scrubber,
        clock,
        random,
        ssmParameterPrefix: config.ssmParameterPrefix,
        sdkRetriesNetwork: config.awsRetryStrategy !== "spread",
        ...extra,
      }),
    ...(controlPlane ? { controlPlane } : {}),
    pulled: new PulledImages(config.stateDir),
    verifications: new Verifications(config.stateDir),
    proxy,
    post: httpPoster((url) => proxy.agentFor(url)),
    // The agent's own registry requests (docs/reference.md §2a): its proxy routes, dockerd's insecure-registry rule, secrets scrubbed.
    signatureVerifier: () => (verifier ??= createSignatureVerifier(nodeRegistryDeps({ routes: proxy, registryConfig: (signal) => docker.registryConfig(signal), scrubber }))),
    diskReserve: new DiskReserve({ dataRoot: (signal) => docker.dataRoot(signal), space: statfsSpace, reserveBytes: config.diskReserveBytes, reservePercent: config.diskReservePercent }),
  };
}

/** What every bake runs with, the CLI's and the daemon's alike; the caller adds where its events and steps go. */
export function bakeParts(
  rt: Runtime,
  resolver: CredentialResolver,
): Pick<BakeDeps, "config" | "docker" | "resolver" | "clock" | "random" | "scrubber" | "pulled" | "disk" | "signatures"> {
  return {
    config: rt.config,
    docker: rt.docker,
    resolver,
    clock: rt.clock,
    random: rt.random,
    scrubber: rt.scrubber,
    pulled: rt.pulled,
    disk: rt.diskReserve,
    signatures: { verifier: rt.signatureVerifier(), verifications: rt.verifications, clock: rt.clock, random: rt.random },
  };
}

/**
 * Where a command's events go: the outbox, delivered to the control plane, and
 * service.progress sent straight out; with no control plane configured (or
 * `enabled` false, --no-report) the outbox is there for its depth and nothing is sent.
 */
export function createReporter(rt: Runtime, opts: { enabled: boolean; onDelivered?: (eventType: string) => void }): Reporter {
  const outbox = new Outbox(rt.config.stateDir, rt.clock);
  const cp = opts.enabled ? rt.controlPlane : undefined;
  if (!cp) return new Reporter(outbox);
  const deliverer = new Deliverer({
    outbox,
    controlPlaneUrl: cp.url,
    token: cp.token,
    post: rt.post,
    clock: rt.clock,
    random: rt.random,
    logger: rt.logger,
    ...(opts.onDelivered ? { onDelivered: opts.onDelivered } : {}),
  });
  // service.progress, best effort (docs/reference.md §7).
  const progress = new ProgressSender({ controlPlaneUrl: cp.url, token: cp.token, boxId: cp.boxId, post: rt.post });
  return new Reporter(outbox, { boxId: cp.boxId, deliverer, progress });
}
