// `slothbox-agent daemon`: the long-running side (docs/reference.md §7–§9). Serves the API,
// runs posted bakes one at a time through the same engine as `bake`, reconciles
// at start and on SIGHUP, delivers the outbox until the control plane takes it,
// reuses credentials in memory only, and talks to systemd (READY, STOPPING,
// WATCHDOG). SIGTERM: stop accepting, abort pulls, flush the outbox, exit 0.
// This module assembles the parts (engine.ts, maintenance.ts, serve.ts) and runs
// their life: start, serve, stop.
import type { FSWatcher } from "node:fs";
import type http from "node:http";
import type https from "node:https";
import { createSecureContext } from "node:tls";
import type { Clock } from "../clock.ts";
import { apiTlsProblem, ConfigError, type Config } from "../config.ts";
import { MemoryCredentialCache } from "../credentials/cache.ts";
import type { Io } from "../io.ts";
import type { Logger } from "../log.ts";
import { createReporter, readSecretFile, readToken, type Runtime } from "../runtime.ts";
import { secretUsernames } from "../spec/username.ts";
import { BakeRunner } from "./bakes.ts";
import { DeliveryLoop, watchOutbox } from "./delivery-loop.ts";
import { daemonEmit, daemonEngine, type DaemonEngine, type Emit } from "./engine.ts";
import { createImageCleaner, createReconciler } from "./maintenance.ts";
import { Metrics } from "./metrics.ts";
import { daemonApi, listen, type Served } from "./serve.ts";
import { createNotifier, watchdogIntervalMs, type Notify } from "./sd-notify.ts";

/** SIGTERM: how long running pulls get to abort, and the outbox to flush. */
const STOP_PULLS_MS = 10_000;
const STOP_FLUSH_MS = 10_000;

/** The API's certificate and key (docs/reference.md §4), read and tried at start: a file that cannot serve is exit 78 naming its key. */
function readTls(config: Config): { cert: string; key: string } | undefined {
  const problem = apiTlsProblem(config);
  if (problem) throw problem;
  if (config.tlsCertFile === undefined || config.tlsKeyFile === undefined) return undefined;
  const cert = readSecretFile("tlsCertFile", config.tlsCertFile);
  const key = readSecretFile("tlsKeyFile", config.tlsKeyFile);
  try {
    createSecureContext({ cert });
  } catch (err) {
    throw new ConfigError("tlsCertFile", `tlsCertFile: ${config.tlsCertFile} is not a PEM certificate chain: ${(err as Error).message}`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new ConfigError("tlsKeyFile", `tlsKeyFile: ${config.tlsKeyFile} is not the PEM private key of ${config.tlsCertFile}: ${(err as Error).message}`);
  }
  return { cert, key };
}

/** The daemon's parts, wired together. */
interface Daemon extends Served {
  loop: DeliveryLoop | undefined;
  notify: Notify | undefined;
}

/** systemctl status shows what the agent is doing. */
type Status = (text: string) => void;

/** Posted bakes, one at a time, each through the engine; systemd's status and the metrics follow them. */
function bakeRunner(rt: Runtime, d: { engine: DaemonEngine; emit: Emit; metrics: Metrics; status: Status }): BakeRunner {
  const { config, logger, scrubber, clock } = rt;
  return new BakeRunner({
    stateDir: config.stateDir,
    clock,
    onError: (err) => logger.error({ err: scrubber.scrub(String((err as Error)?.message ?? err)) }, "bake runner"),
    report: d.emit,
    // Before any output of the bake; a refused POST registers nothing, so that POSTs cannot push live secrets out of the bounded scrubber.
    onStart: (spec) => {
      for (const u of secretUsernames(spec)) scrubber.add(u);
    },
    engine: async (spec, signal, onResult, onInFlight, recorded) => {
      d.status(`baking ${spec.bakeId}: ${spec.services.length} service(s)`);
      const result = await d.engine(spec, signal, { onResult, onInFlight, recorded });
      d.status(`serving on ${config.listen}; last bake ${spec.bakeId} ${result.status}${result.error ? ` (${result.error.code})` : ""}`);
      d.metrics.bakes.inc({ status: result.status });
      if (result.status === "succeeded") d.metrics.lastSuccessfulBake.set(clock.now() / 1000);
      return result;
    },
  });
}

/** Every part of the daemon from the runtime; bakes a crash left running are ended (and reported) before anything else runs. */
async function assemble(rt: Runtime): Promise<Daemon> {
  const { config, logger, clock } = rt;
  // The metrics count deliveries and read the outbox's depth when scraped: each needs the other, and both exist by then.
  const metrics: Metrics = new Metrics(() => reporter.outbox.depth().catch(() => 0));
  const reporter = createReporter(rt, { enabled: true, onDelivered: () => metrics.eventsDelivered.inc() });
  const loop = reporter.deliverer ? new DeliveryLoop(reporter.deliverer, logger, clock) : undefined;
  if (!loop) logger.warn("no controlPlaneUrl configured: events are not sent");
  const emit = daemonEmit(rt, reporter, loop);
  const notify = createNotifier(rt.env, (err) => logger.warn({ err: err.message }, "sd_notify failed"));
  const status: Status = (text) => void notify?.(`STATUS=${text}`);
  const cleaner = createImageCleaner(rt, metrics);
  const cache = new MemoryCredentialCache(config.credentialCacheSeconds);
  const engine = daemonEngine(rt, { cache, metrics, reporter, emit, ...(config.imageCleanup ? { makeRoom: (signal: AbortSignal) => cleaner.once(signal) } : {}) });
  const runner = bakeRunner(rt, { engine, emit, metrics, status });
  await runner.recover();
  const reconciler = createReconciler(rt, { runner, run: (spec, signal) => engine(spec, signal, { reconcile: true }), status });
  return { runner, reconciler, cleaner, metrics, reporter, loop, notify };
}

/** What `begin` started: `stop` ends the timers and SIGHUP's reconcile. */
interface Running {
  stop: () => void;
  outboxWatch: FSWatcher | undefined;
}

/**
 * Runs `fn` every `ms` by the clock, each wait counted from the end of the last run, until `signal` aborts.
 * A run that fails is told to `onError` and the next still comes: one bad run must not end the timer unseen.
 */
export async function every(clock: Clock, ms: number, signal: AbortSignal, fn: () => Promise<void> | void, onError: (err: unknown) => void): Promise<void> {
  while (!signal.aborted) {
    try {
      await clock.sleep(ms, signal);
    } catch {
      return;
    }
    try {
      await fn();
    } catch (err) {
      onError(err);
    }
  }
}

/** Ready: systemd is told, the watchdog fed, delivery and the start's reconcile begin, cleanup is timed, SIGHUP reconciles. Returns what stops them. */
async function begin(rt: Runtime, d: Daemon): Promise<Running> {
  const { config, logger, clock } = rt;
  const timers = new AbortController();
  const failed = (what: string) => (err: unknown) => logger.error({ err: rt.scrubber.scrub(String((err as Error)?.message ?? err)) }, `${what} failed; trying again at the next interval`);
  const { notify, loop } = d;
  await notify?.(`READY=1\nSTATUS=serving on ${config.listen}; no bake yet`);
  const watchdogMs = watchdogIntervalMs(rt.env);
  if (notify && watchdogMs) void every(clock, watchdogMs, timers.signal, () => void notify("WATCHDOG=1"), failed("the watchdog notification"));
  loop?.start();
  // Events a root `bake` leaves beside the daemon are sent as soon as they appear, not at the next idle poll.
  const outboxWatch = loop ? await watchOutbox(d.reporter.outbox.dir, () => loop.nudge(), (err) => logger.warn({ err: err.message }, "cannot watch the outbox; polling it")) : undefined;
  void d.reconciler.run("start");
  // The next cleanup is counted from the end of the last: a slow one never piles up behind itself.
  if (config.imageCleanup) void every(clock, config.imageCleanupIntervalSeconds * 1000, timers.signal, () => d.runner.exclusive((signal) => d.cleaner.once(signal)), failed("the timed image cleanup"));
  const onHup = () => void d.reconciler.run("SIGHUP");
  process.on("SIGHUP", onHup);
  return {
    outboxWatch,
    stop: () => {
      process.off("SIGHUP", onHup);
      timers.abort();
    },
  };
}

/** Resolves with the name of the signal that stops the daemon. */
function stopSignal(logger: Logger): Promise<string> {
  return new Promise<string>((resolve) => {
    const stop = (name: string) => () => {
      logger.info({ signal: name }, "stopping");
      resolve(name);
    };
    process.once("SIGTERM", stop("SIGTERM"));
    process.once("SIGINT", stop("SIGINT"));
  });
}

/** Once no bake is accepted: stop the timers, abort what runs, close the API, flush the outbox within its budget. */
async function shutdown(d: Daemon, running: Running, server: http.Server | https.Server, stoppedBy: string): Promise<void> {
  running.stop();
  await d.notify?.("STOPPING=1");
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await d.runner.stop(STOP_PULLS_MS, `${stoppedBy}: the agent is stopping`);
  server.closeAllConnections();
  await closed;
  running.outboxWatch?.close();
  await d.reporter.progress?.stop();
  await d.loop?.stop(STOP_FLUSH_MS);
}

export async function runDaemon(rt: Runtime, io: Io): Promise<number> {
  const tls = readTls(rt.config);
  const apiToken = readToken(rt.config, "apiTokenFile", rt.scrubber);
  const started = rt.clock.now();
  const d = await assemble(rt);
  let accepting = true;
  const server = daemonApi(rt, d, { apiToken, tls, started, accepting: () => accepting });
  if (!(await listen(rt, server, tls !== undefined, io))) return 1;
  const running = await begin(rt, d);
  const stoppedBy = await stopSignal(rt.logger);
  accepting = false;
  await shutdown(d, running, server, stoppedBy);
  rt.logger.info({ pending: await d.reporter.outbox.depth().catch(() => null) }, "stopped");
  return 0;
}
