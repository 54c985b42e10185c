// The bake: the one code path the CLI and the daemon both run. For each distinct
// image (pulled once however many services use it): a pinned image Docker
// already has is `present`; otherwise its credential is resolved (one AWS call
// per credential), Docker logs in (once per credential) and pulls. Pulls run
// `pullConcurrency` at a time; after the first failure nothing new starts. Only
// a fully successful bake writes the manifest. Every step is an event.
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { CredentialResolver } from "../credentials/resolve.ts";
import { AgentError, asAgentError } from "../errors/agent-error.ts";
import type { Scrubber } from "../errors/scrub.ts";
import type { DockerPort } from "../docker/port.ts";
import { presentPinned, pullImage } from "../docker/pull.ts";
import { waitForDocker } from "../docker/wait.ts";
import { makeEvent, type AgentEvent } from "../report/events.ts";
import type { BakeSpec, Credential, Service } from "../spec/schema.ts";
import { writeManifest, type Manifest } from "../state/manifest.ts";
import { Logins } from "./logins.ts";
import type { BakeResult, BakeStep, ServiceResult } from "./types.ts";

export interface BakeDeps {
  config: Config;
  docker: DockerPort;
  resolver: CredentialResolver;
  clock: Clock;
  scrubber: Scrubber;
  /** Receives every SPEC §7 event (the outbox, the daemon's status). */
  emit: (event: AgentEvent) => Promise<void>;
  onStep?: (step: BakeStep) => void;
  /** Don't write the manifest (reconcile re-pulls under an existing one). */
  noManifest?: boolean;
}

interface Unit {
  key: string;
  services: Service[];
  credential?: Credential;
}

function unitsOf(spec: BakeSpec): Unit[] {
  const units = new Map<string, Unit>();
  for (const s of spec.services) {
    const key = s.ref.canonical;
    const u = units.get(key) ?? { key, services: [] };
    u.services.push(s);
    u.credential ??= s.credential;
    units.set(key, u);
  }
  return [...units.values()];
}

/** Runs `fn` over items with at most `limit` in flight. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function runBake(spec: BakeSpec, deps: BakeDeps, signal: AbortSignal): Promise<BakeResult> {
  const { config, docker, clock } = deps;
  const started = clock.now();
  const step = (s: BakeStep) => deps.onStep?.(s);
  const emit = (type: AgentEvent["type"], fields: Partial<AgentEvent> = {}) => deps.emit(makeEvent(type, spec.bakeId, clock.now(), fields));
  await emit("bake.started");

  const results = new Map<string, ServiceResult>();
  let failed = false;
  const logins = new Logins({ resolver: deps.resolver, docker, scrubber: deps.scrubber, retries: config.pullRetries, step, signal });

  const record = async (unit: Unit, r: Omit<ServiceResult, "name" | "image">) => {
    step({
      kind: "image-done",
      image: unit.key,
      services: unit.services.map((s) => s.name),
      status: r.status,
      durationMs: r.durationMs,
      ...(r.digest ? { digest: r.digest } : {}),
      ...(r.error ? { error: r.error } : {}),
    });
    for (const s of unit.services) {
      results.set(s.name, { name: s.name, image: s.image, ...r });
      if (r.status === "pulled" || r.status === "present") {
        await emit("service.pulled", { service: s.name, image: s.image, digest: r.digest, ...(r.status === "present" ? { cached: true } : {}) });
      } else if (r.status === "failed") {
        await emit("service.failed", { service: s.name, image: s.image, ...(r.error ? { error: r.error } : {}) });
      }
    }
  };

  const units = unitsOf(spec);
  // Images by tag are always pulled: their credentials can be fetched while Docker is checked.
  for (const u of units) if (u.credential && !u.services[0]!.ref.digest) logins.prefetch(u.credential);
  let dockerError: AgentError | undefined;
  try {
    await waitForDocker(docker, clock, signal, (message) => step({ kind: "docker-wait", message }));
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    dockerError = asAgentError(err);
  }

  await eachLimited(units, config.pullConcurrency, async (unit) => {
    const t0 = clock.now();
    if (signal.aborted) throw signal.reason;
    if (dockerError) {
      failed = true;
      await record(unit, { status: "failed", durationMs: 0, error: dockerError.toBody() });
      return;
    }
    if (failed) {
      await record(unit, { status: "skipped", durationMs: 0 });
      return;
    }
    const ref = unit.services[0]!.ref;
    try {
      const present = await presentPinned(ref, docker, signal);
      if (present) {
        await record(unit, { status: "present", imageId: present.imageId, digest: present.digest, durationMs: clock.now() - t0 });
        return;
      }
      const creds = unit.credential ? await logins.forPull(unit.credential) : undefined;
      // A failed login ends the pull that runs beside it; the login's error is the one reported.
      const loginFailed = new AbortController();
      creds?.loggedIn.catch(() => loginFailed.abort());
      step({ kind: "pull-start", image: unit.key, services: unit.services.map((s) => s.name), ...(unit.credential ? { credentialId: unit.credential.id } : {}) });
      let pulled;
      try {
        pulled = await pullImage(
          ref,
          creds?.auth,
          {
            docker,
            clock,
            scrubber: deps.scrubber,
            inactivityTimeoutMs: config.pullInactivityTimeoutSeconds * 1000,
            totalTimeoutMs: config.pullTimeoutSeconds * 1000,
            retries: config.pullRetries,
            onProgress: (progress) => step({ kind: "progress", image: unit.key, progress }),
            onRetry: (e, attempt, retriesLeft) => step({ kind: "retry", image: unit.key, error: e.toBody(), attempt, retriesLeft }),
          },
          AbortSignal.any([signal, loginFailed.signal]),
        );
      } catch (err) {
        if (creds && !signal.aborted) await creds.loggedIn;
        throw err;
      }
      if (creds) await creds.loggedIn;
      await record(unit, { status: "pulled", imageId: pulled.imageId, digest: pulled.digest, durationMs: clock.now() - t0 });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      failed = true;
      const e = asAgentError(err);
      const body = { ...e.toBody(), message: deps.scrubber.scrub(e.message) };
      await record(unit, { status: "failed", durationMs: clock.now() - t0, error: body });
    }
  });

  const services = spec.services.map((s) => results.get(s.name)!);
  const result: BakeResult = {
    bakeId: spec.bakeId,
    status: failed ? "failed" : "succeeded",
    services,
    startedAt: new Date(started).toISOString(),
    durationMs: clock.now() - started,
  };
  if (failed) {
    const first = services.find((s) => s.status === "failed");
    await emit("bake.failed", first?.error ? { error: first.error, service: first.name, image: first.image } : {});
    return result;
  }
  if (!deps.noManifest) {
    const manifest: Manifest = {
      bakeId: spec.bakeId,
      bakedAt: new Date(clock.now()).toISOString(),
      services: spec.services.map((s) => {
        const r = results.get(s.name)!;
        return {
          name: s.name,
          image: s.image,
          imageId: r.imageId ?? "",
          digest: r.digest ?? "",
          registry: s.ref.registry,
          registryCredentialId: s.credential?.id ?? null,
          credentialType: s.credential?.type ?? null,
          parameterName: s.credential?.parameterName ?? null,
          username: s.credential?.username ?? null,
        };
      }),
    };
    result.manifestPath = await writeManifest(config.stateDir, deps.scrubber.scrubValue(manifest));
  }
  result.durationMs = clock.now() - started;
  await emit("bake.succeeded");
  return result;
}
