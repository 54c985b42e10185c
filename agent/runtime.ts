// The composition root's parts: real Docker, AWS, outbox and control-plane
// clients built from the configuration. Only the entry points call this.
import { readFileSync } from "node:fs";
import { systemClock, systemRandom, type Clock, type Random } from "./clock.ts";
import { ConfigError, reportingProblem, type Config } from "./config.ts";
import { DiskReserve, statfsSpace } from "./bake/disk-reserve.ts";
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
  /** undefined when no control plane is configured. */
  controlPlane?: { url: string; token: string };
  /** A bake's disk reserve on Docker's data root. */
  newDiskReserve: () => DiskReserve;
  /** Which of the agent's own requests go through a proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). */
  proxy: ProxyRoutes;
  /** A POST to the control plane, through the proxy where one applies. */
  post: PostEvent;
}

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

/** `report`: the command sends events (the daemon; `bake` without --no-report), so the control plane's settings must be complete. */
export function createRuntime(config: Config, env: Record<string, string | undefined>, opts: { report: boolean; scrubber?: Scrubber }): Runtime {
  const scrubber = opts.scrubber ?? new Scrubber();
  // journald sets JOURNAL_STREAM for a service whose output it takes.
  const logger = createLogger(config.logLevel, scrubber, { journal: env["JOURNAL_STREAM"] !== undefined });
  let proxy: ProxyRoutes;
  try {
    proxy = new ProxyRoutes(env, imdsEndpoint(env));
  } catch (err) {
    if (err instanceof ProxyConfigError) throw new ConfigError(err.variable, err.message, err.variable);
    throw err;
  }
  // The proxy's user and password are secrets like any other, for the life of the process.
  for (const s of proxy.secrets()) scrubber.pin(s);
  let aws: AwsPorts | undefined;
  const getAws = () => (aws ??= createAwsPorts(config, env, scrubber, proxy));
  let controlPlane: Runtime["controlPlane"];
  if (opts.report && config.controlPlaneUrl) {
    const problem = reportingProblem(config);
    if (problem) throw problem;
    const token = readSecretFile("controlPlaneTokenFile", config.controlPlaneTokenFile);
    scrubber.pin(token);
    controlPlane = { url: config.controlPlaneUrl, token };
  }
  const docker = createDockerPort(config.dockerSocket);
  const rt: Runtime = {
    config,
    env,
    clock: systemClock,
    random: systemRandom,
    scrubber,
    logger,
    docker,
    aws: getAws,
    newResolver: (extra = {}) =>
      new CredentialResolver({
        aws: getAws,
        scrubber,
        clock: systemClock,
        ssmParameterPrefix: config.ssmParameterPrefix,
        ...extra,
      }),
    ...(controlPlane ? { controlPlane } : {}),
    proxy,
    post: httpPoster((url) => proxy.agentFor(url)),
    newDiskReserve: () =>
      new DiskReserve({ dataRoot: (signal) => docker.dataRoot(signal), space: statfsSpace, reserveBytes: config.diskReserveBytes, reservePercent: config.diskReservePercent }),
  };
  return rt;
}

/** Delivery of `outbox` to the configured control plane; undefined without one. */
export function createDeliverer(rt: Runtime, outbox: Outbox, onDelivered?: (eventType: string) => void): Deliverer | undefined {
  if (!rt.controlPlane || !rt.config.boxId) return undefined;
  return new Deliverer({
    outbox,
    controlPlaneUrl: rt.controlPlane.url,
    token: rt.controlPlane.token,
    post: rt.post,
    clock: rt.clock,
    random: rt.random,
    logger: rt.logger,
    ...(onDelivered ? { onDelivered } : {}),
  });
}

/** service.progress to the configured control plane (best effort, docs/reference.md §7); undefined without one. */
export function createProgressSender(rt: Runtime): ProgressSender | undefined {
  if (!rt.controlPlane || !rt.config.boxId) return undefined;
  return new ProgressSender({ controlPlaneUrl: rt.controlPlane.url, token: rt.controlPlane.token, boxId: rt.config.boxId, post: rt.post });
}

export function createReporter(rt: Runtime, enabled: boolean): Reporter {
  const outbox = new Outbox(rt.config.stateDir, rt.clock);
  const deliverer = enabled ? createDeliverer(rt, outbox) : undefined;
  if (!deliverer || !rt.config.boxId) return new Reporter(rt.config.boxId ?? "");
  return new Reporter(rt.config.boxId, outbox, deliverer, createProgressSender(rt));
}
