// docs/reference.md §8 /metrics: Prometheus text from prom-client. Names follow Prometheus
// conventions (slothbox_ prefix, base units, _total on counters).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { BakeStep } from "../bake/types.ts";

/** The registry host of a canonical reference (`ghcr.io/acme/api:1` → `ghcr.io`; Docker Hub's is `docker.io`). */
const registryOf = (canonical: string) => canonical.slice(0, canonical.indexOf("/"));

export class Metrics {
  readonly registry = new Registry();
  readonly pulls: Counter<"result">;
  readonly pullDuration: Histogram<"registry">;
  readonly pullBytes: Counter<"registry">;
  /** Bytes counted so far per image being pulled: the counter grows by what is new. */
  private readonly bytesSeen = new Map<string, number>();
  readonly errors: Counter<"code">;
  readonly signatureVerifications: Counter<"result">;
  readonly credentialFetches: Counter<"type" | "result">;
  readonly credentialCacheHits: Counter<"type">;
  readonly bakes: Counter<"status">;
  readonly lastSuccessfulBake: Gauge;
  readonly eventsDelivered: Counter;
  readonly cleanupRuns: Counter<"result">;
  readonly cleanupImages: Counter;
  readonly cleanupBytes: Counter;
  readonly cleanupFailures: Counter;

  constructor(outboxDepth: () => Promise<number>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these gauges with `_total`, which Prometheus reserves for counters.
    for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) {
      this.registry.removeSingleMetric(name);
    }
    this.pulls = new Counter({ name: "slothbox_pulls_total", help: "Images handled by bakes, by result.", labelNames: ["result"], registers });
    this.pullDuration = new Histogram({
      name: "slothbox_pull_duration_seconds",
      help: "Time to pull one image, including retries, by registry host.",
      labelNames: ["registry"],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers,
    });
    this.pullBytes = new Counter({
      name: "slothbox_pull_bytes_total",
      help: "Layer bytes downloaded by pulls, by registry host, as the engine counts them (the containerd image store counts them only while a layer downloads on some engines, and not at all on others).",
      labelNames: ["registry"],
      registers,
    });
    this.errors = new Counter({ name: "slothbox_errors_total", help: "Failed images by SPEC error code.", labelNames: ["code"], registers });
    this.signatureVerifications = new Counter({
      name: "slothbox_signature_verifications_total",
      help: "Signature checks of images of services with a signature policy, by result (verified, reused: verified before for the same digest and keys, rejected, failed: the registry failed).",
      labelNames: ["result"],
      registers,
    });
    this.credentialFetches = new Counter({
      name: "slothbox_credential_fetches_total",
      help: "Credentials fetched from AWS (SSM or ECR), by type and result.",
      labelNames: ["type", "result"],
      registers,
    });
    this.credentialCacheHits = new Counter({
      name: "slothbox_credential_cache_hits_total",
      help: "Credentials served from the in-memory cache instead of AWS.",
      labelNames: ["type"],
      registers,
    });
    this.bakes = new Counter({ name: "slothbox_bakes_total", help: "Bakes run by the daemon, by outcome.", labelNames: ["status"], registers });
    this.lastSuccessfulBake = new Gauge({
      name: "slothbox_last_successful_bake_timestamp_seconds",
      help: "Unix time of the last bake that succeeded.",
      registers,
    });
    this.eventsDelivered = new Counter({ name: "slothbox_events_delivered_total", help: "Events the control plane accepted.", registers });
    this.cleanupRuns = new Counter({ name: "slothbox_image_cleanup_runs_total", help: "Image cleanups run, by result.", labelNames: ["result"], registers });
    this.cleanupImages = new Counter({ name: "slothbox_image_cleanup_images_removed_total", help: "Images the cleanup removed.", registers });
    this.cleanupBytes = new Counter({ name: "slothbox_image_cleanup_removed_bytes_total", help: "Bytes of the images the cleanup removed (their size as Docker reports it).", registers });
    this.cleanupFailures = new Counter({ name: "slothbox_image_cleanup_failures_total", help: "Images the cleanup could not remove.", registers });
    new Gauge({
      name: "slothbox_outbox_events",
      help: "Events waiting in the outbox for delivery.",
      registers,
      async collect() {
        this.set(await outboxDepth());
      },
    });
  }

  /** A bake's step, as the metrics count it. */
  observeStep(s: BakeStep): void {
    if (s.kind === "progress") {
      const seen = this.bytesSeen.get(s.image) ?? 0;
      if (s.progress.current > seen) {
        this.pullBytes.inc({ registry: registryOf(s.image) }, s.progress.current - seen);
        this.bytesSeen.set(s.image, s.progress.current);
      }
      return;
    }
    if (s.kind === "verify") this.signatureVerifications.inc({ result: s.outcome });
    if (s.kind !== "image-done") return;
    this.bytesSeen.delete(s.image);
    this.pulls.inc({ result: s.status });
    if (s.status === "pulled") this.pullDuration.observe({ registry: registryOf(s.image) }, s.durationMs / 1000);
    if (s.error) this.errors.inc({ code: s.error.code });
  }
}
