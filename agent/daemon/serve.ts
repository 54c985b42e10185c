// The daemon's API (api.ts) wired to its parts, and listening: GET /v1/status
// from the runner, the reconciler, the cleaner and the outbox; readiness from
// Docker, AWS and the state directory.
import type http from "node:http";
import type https from "node:https";
import { isLoopbackHost } from "../config.ts";
import type { Io } from "../io.ts";
import type { Reporter } from "../report/reporter.ts";
import type { Runtime } from "../runtime.ts";
import { readManifest } from "../state/manifest.ts";
import { VERSION } from "../version.ts";
import { createApiServer } from "./api.ts";
import type { BakeRunner } from "./bakes.ts";
import type { ImageCleaner, Reconciler } from "./maintenance.ts";
import type { Metrics } from "./metrics.ts";
import { checkReadiness, readinessProbe } from "./readiness.ts";
import type { DaemonStatus } from "./status.ts";

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

/** What the API reads of the daemon. */
export interface Served {
  runner: BakeRunner;
  reconciler: Reconciler;
  cleaner: ImageCleaner;
  metrics: Metrics;
  reporter: Reporter;
}

function statusOf(rt: Runtime, d: Served, started: number): () => Promise<DaemonStatus> {
  return async () => ({
    version: VERSION,
    boxId: rt.config.boxId ?? null,
    uptimeSeconds: Math.round((rt.clock.now() - started) / 1000),
    runningBake: d.runner.running ?? null,
    lastBake: d.runner.lastBake ?? null,
    lastReconcile: d.reconciler.last() ?? null,
    lastCleanup: d.cleaner.last() ?? null,
    outboxEvents: await d.reporter.outbox.depth().catch(() => null),
  });
}

export function daemonApi(
  rt: Runtime,
  d: Served,
  opts: { apiToken: string; tls: { cert: string; key: string } | undefined; started: number; accepting: () => boolean },
): http.Server | https.Server {
  const { config } = rt;
  const ready = () =>
    checkReadiness({ docker: rt.docker, aws: async (signal) => rt.aws().checkReachable(signal, { ssm: await needsSsm(config.stateDir) }), stateDir: config.stateDir });
  return createApiServer({
    apiToken: opts.apiToken,
    scrubber: rt.scrubber,
    logger: rt.logger,
    ssmParameterPrefix: config.ssmParameterPrefix,
    accepting: opts.accepting,
    ...(opts.tls ? { tls: opts.tls } : {}),
    readiness: readinessProbe(ready, rt.clock),
    metrics: async () => ({ contentType: d.metrics.registry.contentType, body: await d.metrics.registry.metrics() }),
    submit: (spec) => d.runner.submit(spec),
    bake: (id) => d.runner.get(id),
    status: statusOf(rt, d, opts.started),
  });
}

/** Listens on config.listen and says so; false (said on stderr) when it cannot. */
export async function listen(rt: Runtime, server: http.Server | https.Server, tls: boolean, io: Io): Promise<boolean> {
  const { config, logger } = rt;
  const { host, port } = parseListen(config.listen);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    io.stderr(`error: cannot listen on ${config.listen}: ${(err as Error).message}`);
    return false;
  }
  logger.info({ listen: config.listen, tls, version: VERSION }, "slothbox-agent daemon serving");
  if (!isLoopbackHost(host)) {
    logger.warn(
      { listen: config.listen },
      "listening beyond loopback: /healthz, /readyz and /metrics answer anyone who can reach this address without a token; put the API behind a firewall or listen on 127.0.0.1",
    );
  }
  io.stderr(`slothbox-agent ${VERSION} daemon listening on ${tls ? "https" : "http"}://${config.listen}`);
  return true;
}
