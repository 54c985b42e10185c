// `slothbox-agent daemon`: the long-running side (docs/reference.md §7–§9). Serves the API,
// runs posted bakes one at a time through the same engine as `bake`, reconciles
// at start and on SIGHUP, delivers the outbox until the control plane takes it,
// reuses credentials in memory only, and talks to systemd (READY, STOPPING,
// WATCHDOG). SIGTERM: stop accepting, abort pulls, flush the outbox, exit 0.
import { createSecureContext } from "node:tls";
import { progressTracker, type ImageProgress } from "../bake/progress.ts";
import { runBake } from "../bake/run.ts";
import type { BakeResult, ServiceResult } from "../bake/types.ts";
import type { Io } from "../io.ts";
import { apiTlsProblem, ConfigError, isLoopbackHost, type Config } from "../config.ts";
import { MemoryCredentialCache } from "../credentials/cache.ts";
import { asAgentError } from "../errors/agent-error.ts";
import { describeEvent, type AgentEvent } from "../report/events.ts";
import { bakeParts, createReporter, readSecretFile, readToken, type Runtime } from "../runtime.ts";
import type { BakeSpec } from "../spec/schema.ts";
import { secretUsernames } from "../spec/username.ts";
import { readManifest } from "../state/manifest.ts";
import { VERSION } from "../version.ts";
import { createApiServer } from "./api.ts";
import { BakeRunner } from "./bakes.ts";
import { DeliveryLoop, watchOutbox } from "./delivery-loop.ts";
import { Metrics } from "./metrics.ts";
import { cleanupImages } from "./cleanup.ts";
import { checkReadiness, readinessProbe } from "./readiness.ts";
import { reconcile } from "./reconcile.ts";
import { createNotifier, watchdogIntervalMs } from "./sd-notify.ts";

/** SIGTERM: how long running pulls get to abort, and the outbox to flush. */
const STOP_PULLS_MS = 10_000;
const STOP_FLUSH_MS = 10_000;

/**
 * Whether readiness asks for a connection to SSM: unless the box's last bake named
 * no token credential. A box whose images come from ECR alone may sit in a subnet
 * with VPC endpoints for ECR and none for SSM, and is ready all the same; a box
 * without a manifest yet, or with one that cannot be read, is taken to need SSM.
 */
async function needsSsm(stateDir: string): Promise<boolean> {
  const manifest = await readManifest(stateDir).catch(() => undefined);
  return manifest === undefined || manifest.services.some((s) => s.credentialType === "token");
}

function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(listen.slice(i + 1)) };
}

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

export async function runDaemon(rt: Runtime, io: Io): Promise<number> {
  const { config, logger, scrubber, clock } = rt;
  const tls = readTls(config);
  const apiToken = readToken(config, "apiTokenFile", scrubber);
  const started = clock.now();

  const pulled = rt.pulled;
  const metrics = new Metrics(() => outbox.depth().catch(() => 0));
  const reporter = createReporter(rt, { enabled: true, onDelivered: () => metrics.eventsDelivered.inc() });
  const outbox = reporter.outbox;
  const cache = new MemoryCredentialCache(config.credentialCacheSeconds);
  const loop = reporter.deliverer ? new DeliveryLoop(reporter.deliverer, logger, clock) : undefined;
  if (!loop) logger.warn("no controlPlaneUrl configured: events are not sent");

  const progress = reporter.progress;

  const emit = async (e: AgentEvent) => {
    const clean = scrubber.scrubValue(e);
    const fields = { event: clean.type, bakeId: clean.bakeId, service: clean.service, code: clean.error?.code };
    if (clean.error) logger.warn(fields, describeEvent(clean));
    else logger.info(fields, describeEvent(clean));
    await reporter.emit(clean);
    loop?.nudge();
  };

  const engine = (
    spec: BakeSpec,
    signal: AbortSignal,
    opts: { reconcile?: boolean; onResult?: (r: ServiceResult) => void; onInFlight?: (get: () => ImageProgress[]) => void } = {},
  ): Promise<BakeResult> => {
    // A reconcile re-pulls under an old bake's id: its progress is nobody's news.
    const tracker = opts.reconcile ? undefined : progressTracker(spec, () => clock.now(), progress);
    if (tracker) opts.onInFlight?.(() => tracker.inFlight());
    const resolver = rt.newResolver({
      cache,
      onFetch: (c, outcome) => metrics.credentialFetches.inc({ type: c.type, result: outcome }),
      onCacheHit: (c) => metrics.credentialCacheHits.inc({ type: c.type }),
    });
    return runBake(
      spec,
      {
        ...bakeParts(rt, resolver),
        ...(opts.reconcile ? { noManifest: true } : {}),
        // Called inside the bake's turn: a timed cleanup cannot run meanwhile.
        ...(config.imageCleanup ? { makeRoom: (signal: AbortSignal) => cleanOnce(signal) } : {}),
        ...(opts.onResult ? { onResult: opts.onResult } : {}),
        // A reconcile re-pulls under the manifest's bake: only its service events are news.
        emit: (e) => (opts.reconcile && e.type.startsWith("bake.") ? Promise.resolve() : emit(opts.reconcile ? { ...e, reconcile: true } : e)),
        onStep: (s) => {
          // Why a cleanup ran before a bake, or why the reserve was not checked: the journal says.
          if (s.kind === "disk") logger.info({ bakeId: spec.bakeId }, s.message);
          tracker?.step(s);
          metrics.observeStep(s);
        },
      },
      signal,
    );
  };

  const notify = createNotifier(rt.env, (err) => logger.warn({ err: err.message }, "sd_notify failed"));
  /** systemctl status shows what the agent is doing. */
  const status = (text: string) => void notify?.(`STATUS=${text}`);

  const runner = new BakeRunner({
    stateDir: config.stateDir,
    clock,
    onError: (err) => logger.error({ err: scrubber.scrub(String((err as Error)?.message ?? err)) }, "bake runner"),
    report: emit,
    // Before any output of the bake; a refused POST registers nothing, so that POSTs cannot push live secrets out of the bounded scrubber.
    onStart: (spec) => {
      for (const u of secretUsernames(spec)) scrubber.add(u);
    },
    engine: async (spec, signal, onResult, onInFlight) => {
      status(`baking ${spec.bakeId}: ${spec.services.length} service(s)`);
      const result = await engine(spec, signal, { onResult, onInFlight });
      status(`serving on ${config.listen}; last bake ${spec.bakeId} ${result.status}${result.error ? ` (${result.error.code})` : ""}`);
      metrics.bakes.inc({ status: result.status });
      if (result.status === "succeeded") metrics.lastSuccessfulBake.set(clock.now() / 1000);
      return result;
    },
  });
  await runner.recover();

  let lastReconcile: Record<string, unknown> | undefined;
  const doReconcile = (why: string) =>
    runner.exclusive(async (signal) => {
      status(`reconciling (${why})`);
      try {
        const r = await reconcile({ stateDir: config.stateDir, docker: rt.docker, run: (spec, s) => engine(spec, s, { reconcile: true }) }, signal);
        lastReconcile = {
          at: new Date(clock.now()).toISOString(),
          trigger: why,
          checked: r.checked,
          missing: r.missing,
          retagged: r.retagged,
          status: r.result?.status ?? (r.retagged.length ? "retagged" : "nothing to do"),
        };
        logger.info(lastReconcile, `reconcile (${why}): ${r.checked} image(s) checked, ${r.missing.length} pulled again, ${r.retagged.length} retagged`);
      } catch (err) {
        const e = asAgentError(err);
        lastReconcile = { at: new Date(clock.now()).toISOString(), trigger: why, status: "failed", error: e.toBody() };
        logger.warn({ code: e.code, err: scrubber.scrub(e.message) }, "reconcile failed");
      }
      status(`serving on ${config.listen}; reconciled (${String(lastReconcile["status"])})`);
    });

  let lastCleanup: Record<string, unknown> | undefined;
  /** One image cleanup; the caller holds the turn (the timer's exclusive, or the bake that needs the room). */
  const cleanOnce = async (signal: AbortSignal) => {
      try {
        const out = await cleanupImages(
          {
            docker: rt.docker,
            stateDir: config.stateDir,
            pulled,
            keepBakes: config.imageCleanupKeepBakes,
            minAgeSeconds: config.imageCleanupMinAgeSeconds,
            now: () => clock.now(),
            onRemoved: (r) => logger.info({ imageId: r.imageId, refs: r.refs, bytes: r.bytes }, `image cleanup: removed ${r.refs.join(", ")} (${r.bytes} bytes)`),
            onUntagged: (r) => logger.info({ imageId: r.imageId, refs: r.refs }, `image cleanup: untagged ${r.refs.join(", ")}; the image stays under references that are not the agent's`),
            onKept: (k) => logger.info({ imageId: k.imageId, refs: k.refs }, `image cleanup: kept ${k.refs.join(", ") || k.imageId}: ${k.reason}`),
          },
          signal,
        );
        metrics.cleanupRuns.inc({ result: out.failures.length ? "failed" : "ok" });
        metrics.cleanupImages.inc(out.removed.length);
        metrics.cleanupBytes.inc(out.bytes);
        metrics.cleanupFailures.inc(out.failures.length);
        for (const f of out.failures) logger.warn({ imageId: f.imageId }, `image cleanup: could not remove ${f.imageId}: ${scrubber.scrub(f.error)}`);
        lastCleanup = { at: out.at, removed: out.removed, untagged: out.untagged, bytes: out.bytes, kept: out.kept.length, failures: out.failures };
      } catch (err) {
        metrics.cleanupRuns.inc({ result: "failed" });
        lastCleanup = { at: new Date(clock.now()).toISOString(), error: asAgentError(err).toBody() };
        logger.warn({ err: scrubber.scrub((err as Error).message) }, "image cleanup failed");
      }
    };
  const doCleanup = () => runner.exclusive(cleanOnce);

  let accepting = true;
  const server = createApiServer({
    apiToken,
    scrubber,
    logger,
    ssmParameterPrefix: config.ssmParameterPrefix,
    accepting: () => accepting,
    ...(tls ? { tls } : {}),
    readiness: readinessProbe(() => checkReadiness({ docker: rt.docker, aws: async (signal) => rt.aws().checkReachable(signal, { ssm: await needsSsm(config.stateDir) }), stateDir: config.stateDir }), clock),
    metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    submit: (spec) => runner.submit(spec),
    bake: (id) => runner.get(id),
    status: async () => ({
      version: VERSION,
      boxId: config.boxId ?? null,
      uptimeSeconds: Math.round((clock.now() - started) / 1000),
      runningBake: runner.running ?? null,
      lastBake: runner.lastBake ?? null,
      lastReconcile: lastReconcile ?? null,
      lastCleanup: lastCleanup ?? null,
      outboxEvents: await outbox.depth().catch(() => null),
    }),
  });
  const { host, port } = parseListen(config.listen);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    io.stderr(`error: cannot listen on ${config.listen}: ${(err as Error).message}`);
    return 1;
  }
  logger.info({ listen: config.listen, tls: tls !== undefined, version: VERSION }, "slothbox-agent daemon serving");
  if (!isLoopbackHost(host)) {
    logger.warn(
      { listen: config.listen },
      "listening beyond loopback: /healthz, /readyz and /metrics answer anyone who can reach this address without a token; put the API behind a firewall or listen on 127.0.0.1",
    );
  }
  io.stderr(`slothbox-agent ${VERSION} daemon listening on ${tls ? "https" : "http"}://${config.listen}`);

  await notify?.(`READY=1\nSTATUS=serving on ${config.listen}; no bake yet`);
  const every = watchdogIntervalMs(rt.env);
  const watchdog = notify && every ? setInterval(() => void notify("WATCHDOG=1"), every) : undefined;
  loop?.start();
  // Events a root `bake` leaves beside the daemon are sent as soon as they appear, not at the next idle poll.
  const outboxWatch = loop ? await watchOutbox(outbox.dir, () => loop.nudge(), (err) => logger.warn({ err: err.message }, "cannot watch the outbox; polling it")) : undefined;
  void doReconcile("start");

  // The next cleanup is counted from the end of the last: a slow one never piles up behind itself.
  let cleanupTimer: NodeJS.Timeout | undefined;
  const scheduleCleanup = () => {
    cleanupTimer = setTimeout(() => void doCleanup().finally(() => accepting && scheduleCleanup()), config.imageCleanupIntervalSeconds * 1000);
    cleanupTimer.unref();
  };
  if (config.imageCleanup) scheduleCleanup();
  const onHup = () => void doReconcile("SIGHUP");
  process.on("SIGHUP", onHup);
  const stoppedBy = await new Promise<string>((resolve) => {
    const stop = (name: string) => () => {
      logger.info({ signal: name }, "stopping");
      resolve(name);
    };
    process.once("SIGTERM", stop("SIGTERM"));
    process.once("SIGINT", stop("SIGINT"));
  });

  accepting = false;
  process.off("SIGHUP", onHup);
  await notify?.("STOPPING=1");
  if (watchdog) clearInterval(watchdog);
  clearTimeout(cleanupTimer);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await runner.stop(STOP_PULLS_MS, `${stoppedBy}: the agent is stopping`);
  server.closeAllConnections();
  await closed;
  outboxWatch?.close();
  await progress?.stop();
  await loop?.stop(STOP_FLUSH_MS);
  logger.info({ pending: await outbox.depth().catch(() => null) }, "stopped");
  return 0;
}
