// docs/reference.md §8 /metrics: Prometheus text from prom-client. Names follow Prometheus
// conventions (slothbox_ prefix, base units, _total on counters).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class Metrics {
  readonly registry = new Registry();
  readonly pulls: Counter<"result">;
  readonly pullDuration: Histogram;
  readonly errors: Counter<"code">;
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
      help: "Time to pull one image, including retries.",
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers,
    });
    this.errors = new Counter({ name: "slothbox_errors_total", help: "Failed images by SPEC error code.", labelNames: ["code"], registers });
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
}
