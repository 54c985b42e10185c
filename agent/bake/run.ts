// The bake: the one code path the CLI and the daemon both run. For each distinct
// image (pulled once however many services use it): a pinned image Docker
// already has is `present`; otherwise its credential is resolved (one AWS call
// per credential), Docker logs in (once per credential) and pulls. Pulls run
// `pullConcurrency` at a time; after the first failure nothing new starts (pulls
// already running finish and report). An abort (SIGINT/SIGTERM, the daemon
// stopping) ends the bake as failed with `interrupted`: running pulls stop, what
// had not started is skipped, and the bake still reports. Only a fully
// successful bake writes the manifest. Every step is an event. An image whose
// services name a signature policy is verified first and pulled by the digest
// that verified (signed.ts).
import type { Clock, Random } from "../clock.ts";
import type { Config } from "../config.ts";
import type { CredentialResolver } from "../credentials/resolve.ts";
import { AgentError, asAgentError, interruptedError, type ErrorBody } from "../errors/agent-error.ts";
import type { Scrubber } from "../errors/scrub.ts";
import type { DockerPort } from "../docker/port.ts";
import type { RegistryAuth } from "../credentials/types.ts";
import { engineFailure, withRegistryWords } from "../docker/failure.ts";
import { presentPinned, pullImage, type PullDeps, type RecordedImage } from "../docker/pull.ts";
import { waitForDocker } from "../docker/wait.ts";
import { formatBytes, type DiskReserve, type ReserveCheck } from "./disk-reserve.ts";
import { makeEvent, type AgentEvent } from "../report/events.ts";
import type { VerifiedSignature } from "../signatures/types.ts";
import { parseReference, type ImageReference } from "../spec/reference.ts";
import type { BakeSpec, Credential, Service } from "../spec/schema.ts";
import { writeManifest, type Manifest } from "../state/manifest.ts";
import type { PulledImages } from "../state/pulled.ts";
import { markRunning } from "../state/running-bakes.ts";
import { Logins, type PullAuth } from "./logins.ts";
import { policiesOf, verifyImage, type SignedDeps, type VerifiedImage } from "./signed.ts";
import { Slots } from "./slots.ts";
import type { BakeResult, BakeStep, ServiceResult } from "./types.ts";

export type BakeConfig = Pick<Config, "stateDir" | "pullConcurrency" | "pullRetries" | "pullTimeoutSeconds" | "pullInactivityTimeoutSeconds">;

export interface BakeDeps {
  config: BakeConfig;
  docker: DockerPort;
  resolver: CredentialResolver;
  clock: Clock;
  /** The jitter of the pulls' and logins' retries. */
  random: Random;
  scrubber: Scrubber;
  /** Receives every docs/reference.md §7 event (the outbox, the daemon's status). */
  emit: (event: AgentEvent) => Promise<void>;
  onStep?: (step: BakeStep) => void;
  /** Each service's result the moment it is known (GET /v1/bakes/<id> while the bake runs). */
  onResult?: (result: ServiceResult) => void;
  /** Don't write the manifest (reconcile re-pulls under an existing one). */
  noManifest?: boolean;
  /** Where the images this bake pulls are recorded as the agent's (image cleanup removes only those). */
  pulled?: PulledImages;
  /** Written before the bake's first event (the daemon's record of the bake, so that an interrupted bake is reported after a restart): the bake's reads of Docker and AWS start meanwhile; its error fails the bake. */
  recorded?: Promise<void>;
  /** The disk reserve, checked before the pulls and while they run; none: not checked. */
  disk?: DiskReserve;
  /** A bake short of its disk reserve first removes what image cleanup would remove anyway (the daemon). */
  makeRoom?: (signal: AbortSignal) => Promise<void>;
  /** docs/reference.md §2a: how images of services with a signature policy are verified. A bake of such a service without it fails. */
  signatures?: SignedDeps;
}

/** While pulls run, the disk reserve is checked this often: at 200 MB/s a check late by this much costs 400 MB of a 2 GB reserve. */
const DISK_WATCH_MS = 2000;

/**
 * The reserve, checked; where it is short and the daemon can make room (`makeRoom`), the room
 * image cleanup makes is made and the reserve checked again. A cleanup that fails leaves the
 * second check to say how short the disk still is.
 */
async function checkMakingRoom(disk: DiskReserve, makeRoom: BakeDeps["makeRoom"], signal: AbortSignal, step: (s: BakeStep) => void): Promise<ReserveCheck> {
  const r = await disk.check(signal);
  if (r.kind !== "short" || !makeRoom) return r;
  step({ kind: "disk", message: `${r.error.message}; removing what image cleanup would remove anyway` });
  await makeRoom(signal).catch(() => undefined);
  return disk.check(signal);
}

/** Whether the bake may start on this disk: the reserve's error if not, after the daemon has made what room cleanup makes. */
async function diskProblem(disk: DiskReserve, deps: BakeDeps, signal: AbortSignal, step: (s: BakeStep) => void): Promise<AgentError | undefined> {
  const r = await checkMakingRoom(disk, deps.makeRoom, signal, step);
  if (r.kind === "unknown") step({ kind: "disk", message: `disk reserve not checked: ${r.reason}` });
  if (r.kind === "ok") step({ kind: "disk", message: `disk: ${formatBytes(r.free)} free on ${r.path}, reserve ${formatBytes(r.reserve)}` });
  return r.kind === "short" ? r.error : undefined;
}

/**
 * Checks the reserve every DISK_WATCH_MS (by the clock) until stopped; when the pulls take
 * the disk below it, the daemon first makes the room image cleanup makes, and if that is not
 * enough `full` is aborted with disk_full. A check under way when stopped still ends the pulls
 * if the disk is short, but makes no room.
 */
function watchDisk(disk: DiskReserve, full: AbortController, deps: BakeDeps, signal: AbortSignal, step: (s: BakeStep) => void): () => void {
  const stopped = new AbortController();
  const watching = AbortSignal.any([signal, stopped.signal]);
  const loop = async () => {
    for (;;) {
      await deps.clock.sleep(DISK_WATCH_MS, watching);
      const r = await checkMakingRoom(disk, stopped.signal.aborted ? undefined : deps.makeRoom, signal, step);
      if (r.kind === "short") return full.abort(r.error);
      if (stopped.signal.aborted) return;
    }
  };
  // Its end (stopped, or the bake aborted under a check) needs no one told: the bake reports itself.
  loop().catch(() => undefined);
  return () => stopped.abort();
}

interface Unit {
  key: string;
  services: Service[];
  credential?: Credential;
  /** Set once its services' signature policies accepted it: what is pulled is this digest, never the tag again (docs/reference.md §2a). */
  verified?: VerifiedImage;
}

type Outcome = Omit<ServiceResult, "name" | "image">;

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

/** Whose turn it is to pull: a free slot, unless the bake has already failed. */
interface PullTurn {
  slots: Slots;
  /** An image failed (set the moment a pull fails, before its slot is passed on, and when a failure is recorded). */
  failed: boolean;
  /** Before the bake's first real pull (images already present pass without it): the disk reserve, checked once. */
  beforePull?: () => Promise<void>;
  /** Aborted with disk_full when the pulls take the disk below its reserve. */
  full?: AbortSignal;
}

/** One image's pull as the bake runs it: what its steps share. */
interface UnitPull {
  unit: Unit;
  deps: BakeDeps;
  logins: Logins;
  signal: AbortSignal;
  step: (s: BakeStep) => void;
  turn: PullTurn;
  /** When the image's work began: its duration counts from here. */
  t0: number;
}

/** How a login and pull ended: the outcome, or the error with the credential it was tried with (the registry is asked again with it). */
type Tried = { ok: true; outcome: Outcome } | { ok: false; error: unknown; auth?: RegistryAuth };

/**
 * docs/reference.md §2a: where the image's services name signature policies, the image
 * verified with each (with the pull's credential; its login to Docker runs meanwhile),
 * recorded on the unit; throws image_signature_invalid or the registry's failure.
 * An image the bake would skip is not asked about.
 */
async function verifyUnit(u: Omit<UnitPull, "t0">): Promise<"skipped" | undefined> {
  const { unit, deps } = u;
  const policies = policiesOf(unit.services);
  if (policies.length === 0) return undefined;
  if (u.turn.failed) return "skipped";
  const first = unit.services[0]!;
  if (!deps.signatures) throw new AgentError("internal", `service ${first.name} names signature policy ${policies[0]!.id}, but this bake was given no signature verifier`);
  const auth = unit.credential ? await u.logins.forRegistry(unit.credential) : undefined;
  unit.verified = await verifyImage(first.image, first.ref, policies, auth, { retries: deps.config.pullRetries, ...deps.signatures }, u.signal, u.step);
  return undefined;
}

/** One image: verified where a policy asks, then present, or logged in and pulled. Throws what failed, in the registry's words where the engine dropped them. */
async function pullUnit(u: Omit<UnitPull, "t0">): Promise<Outcome> {
  const { deps, signal } = u;
  const t0 = deps.clock.now();
  const ref = u.unit.services[0]!.ref;
  if ((await verifyUnit(u)) === "skipped") return { status: "skipped", durationMs: 0 };
  const present = await presentPinned(ref, { docker: deps.docker, scrubber: deps.scrubber }, signal);
  if (present) return { status: "present", imageId: present.imageId, digest: present.digest, durationMs: deps.clock.now() - t0 };
  const tried = await loginAndPull({ ...u, t0 });
  if (tried.ok) return tried.outcome;
  if (signal.aborted || !(tried.error instanceof AgentError)) throw tried.error;
  // The question is bounded like a pull that makes no progress: a registry that stalls on it leaves Docker's line standing.
  const asking = AbortSignal.any([signal, AbortSignal.timeout(deps.config.pullInactivityTimeoutSeconds * 1000)]);
  throw await withRegistryWords(tried.error, ref.digest ? `${ref.name}@${ref.digest}` : `${ref.name}:${ref.tag}`, tried.auth, deps, asking);
}

async function loginAndPull(u: UnitPull): Promise<Tried> {
  let creds: PullAuth | undefined;
  try {
    creds = u.unit.credential ? await u.logins.forPull(u.unit.credential) : undefined;
  } catch (error) {
    return { ok: false, error };
  }
  try {
    return { ok: true, outcome: await pullInTurn(u, creds) };
  } catch (error) {
    return { ok: false, error, ...(creds ? { auth: creds.auth } : {}) };
  }
}

/** The pull, once a slot is free: skipped after the bake's first failure, and the disk reserve checked before the first. */
async function pullInTurn(u: UnitPull, creds: PullAuth | undefined): Promise<Outcome> {
  const { turn } = u;
  const release = await turn.slots.acquire(u.signal);
  try {
    // Nothing starts after the first failure (a pull already running finishes).
    if (turn.failed) return { status: "skipped", durationMs: 0 };
    if (turn.beforePull) {
      try {
        await turn.beforePull();
      } catch (err) {
        // The first image to hear the disk is short reports it; the others did not start.
        if (turn.failed) return { status: "skipped", durationMs: 0 };
        throw err;
      }
    }
    return await pull(u, creds, release);
  } catch (err) {
    // Said before a slot still held is passed on (finally): the image that gets it must not start. (A
    // pull that failed after the engine had pulled, at its inspect or its login, passed it on already.)
    turn.failed = true;
    throw err;
  } finally {
    release();
  }
}

/**
 * One image's pull in its slot. The slot is passed on (`release`) as soon as the engine has
 * pulled the image: the inspect after it is no download, and the next image's pull need not
 * wait for it (on the containerd store it answers in 10–35 ms while other pulls unpack). An
 * inspect that then fails still fails the bake; an image that took the slot meanwhile runs on.
 */
async function pull(u: UnitPull, creds: PullAuth | undefined, release: () => void): Promise<Outcome> {
  const { unit, deps, signal, step } = u;
  step({ kind: "pull-start", image: unit.key, services: unit.services.map((s) => s.name), ...(unit.credential ? { credentialId: unit.credential.id } : {}) });
  let pulled;
  try {
    pulled = await pullBesideLogin(u, creds, release);
  } catch (err) {
    throw await pullError(err, creds, signal, u.turn.full);
  }
  if (creds) await creds.loggedIn;
  await tagVerified(unit, deps, signal);
  return { status: "pulled", imageId: pulled.imageId, digest: pulled.digest, durationMs: deps.clock.now() - u.t0 };
}

/**
 * The pull, beside its credential's login: a failed login ends it (the login's error is the
 * one reported); a login that renewed a rotated credential from the cache ends it too, unless
 * the engine has already pulled with the old one, and it starts again with the new credential,
 * which `creds.auth` then is (the registry's words are asked for with the credential used).
 */
async function pullBesideLogin(u: UnitPull, creds: PullAuth | undefined, onPulled: () => void): Promise<RecordedImage> {
  const { unit, deps, signal, step } = u;
  const { config } = deps;
  // Once the engine has pulled the image, a renewal changes nothing: the old credential served.
  let pulled = false;
  const pullDeps: PullDeps = {
    docker: deps.docker,
    clock: deps.clock,
    random: deps.random,
    scrubber: deps.scrubber,
    inactivityTimeoutMs: config.pullInactivityTimeoutSeconds * 1000,
    totalTimeoutMs: config.pullTimeoutSeconds * 1000,
    retries: config.pullRetries,
    onProgress: (progress) => step({ kind: "progress", image: unit.key, progress }),
    onRetry: (e, attempt, retriesLeft) => step({ kind: "retry", image: unit.key, error: e.toBody(), attempt, retriesLeft }),
    onPulled: () => {
      pulled = true;
      onPulled();
    },
  };
  const first = creds?.auth;
  const loginEnded = new AbortController();
  const renewed = creds?.loggedIn.then(
    (auth) => (auth === first || pulled ? undefined : (loginEnded.abort(), auth)),
    () => void loginEnded.abort(),
  );
  try {
    return await pullImage(pullTarget(unit), first, pullDeps, AbortSignal.any([signal, loginEnded.signal]));
  } catch (err) {
    const next = renewed && !signal.aborted && !pulled ? await renewed : undefined;
    if (!next) throw err;
    return pullImage(pullTarget(unit), next, pullDeps, signal);
  }
}

/** What a pull asks the engine for: the spec's reference, or the digest its signature policies accepted. */
function pullTarget(unit: Unit): ImageReference {
  const ref = unit.services[0]!.ref;
  return unit.verified ? parseReference(`${ref.name}@${unit.verified.digest}`) : ref;
}

/** A verified image pulled by its digest gets the spec's tag, as a pull by tag leaves it (containers are started by it). */
async function tagVerified(unit: Unit, deps: BakeDeps, signal: AbortSignal): Promise<void> {
  const ref = unit.services[0]!.ref;
  if (!unit.verified || !ref.tag || ref.digest) return;
  await deps.docker.tagImage(`${ref.name}@${unit.verified.digest}`, ref.name, ref.tag, signal).catch((err: unknown) => {
    throw signal.aborted ? err : engineFailure(err, deps.scrubber);
  });
}

/**
 * What a failed pull reports: the login's error where the login beside it failed (that
 * failure ended the pull); the disk reserve's, as an error of this image's own (every image
 * waiting shares the signal's reason), where the reserve stopped it; else the pull's own.
 */
async function pullError(err: unknown, creds: PullAuth | undefined, signal: AbortSignal, full: AbortSignal | undefined): Promise<unknown> {
  const loginError = creds && !signal.aborted ? await creds.loggedIn.then(() => undefined, (e: unknown) => ({ e })) : undefined;
  if (loginError) return loginError.e;
  if (full?.aborted && err === full.reason && err instanceof AgentError) {
    const own = new AgentError(err.code, err.message);
    own.attempts = err.attempts;
    return own;
  }
  return err;
}

export async function runBake(spec: BakeSpec, deps: BakeDeps, signal: AbortSignal): Promise<BakeResult> {
  const { config, clock } = deps;
  const started = clock.now();
  const emit = (type: AgentEvent["type"], fields: Partial<AgentEvent> = {}) => deps.emit(makeEvent(type, spec.bakeId, clock.now(), fields));
  // What the start began ends with a bake whose record cannot be written.
  const unrecorded = new AbortController();
  const start = startBake(spec, deps, AbortSignal.any([signal, unrecorded.signal]));
  try {
    await deps.recorded;
  } catch (err) {
    unrecorded.abort(err);
    throw err;
  }
  await emit("bake.started");
  // Image cleanup, in the daemon beside this process, keeps what this bake needs until it ends.
  // A state dir this process cannot write fails the bake where it records what it pulled, with the reason.
  const done = deps.pulled ? await markRunning(config.stateDir, spec.bakeId, spec.services.map((s) => s.image)).catch(() => undefined) : undefined;
  try {
    return await bakeUnits(start, deps, signal, started, emit);
  } finally {
    await done?.();
  }
}

/** The bake's own events by type (daemon/engine.ts's Emit sends whole events). */
type BakeEmit = (type: AgentEvent["type"], fields?: Partial<AgentEvent>) => Promise<void>;

/** One bake as it runs: what its parts share. */
interface BakeRun {
  spec: BakeSpec;
  deps: BakeDeps;
  signal: AbortSignal;
  step: (s: BakeStep) => void;
  emit: BakeEmit;
  turn: PullTurn;
  logins: Logins;
  results: Map<string, ServiceResult>;
  /** The bake's first failure: why it failed, unless it was interrupted. */
  firstFailure?: ErrorBody;
}

/** What a bake asks for before its start is written down: its images, its logins, and whether Docker answers. */
interface BakeStart {
  spec: BakeSpec;
  step: (s: BakeStep) => void;
  units: Unit[];
  logins: Logins;
  /** Docker's error where it never answered (and the bake was not interrupted). */
  docker: Promise<AgentError | undefined>;
}

/** The disk reserve this bake checks: none where it has none, or one of 0 bytes and 0 %. */
function reserveOf(deps: BakeDeps): DiskReserve | undefined {
  return deps.disk && !deps.disk.disabled ? deps.disk : undefined;
}

/**
 * Starts what needs no record first, while the bake.started event and the running-bakes record
 * are written (each an fsync): the credentials of images by tag (always pulled) are fetched,
 * Docker is waited for, and where it keeps images is read for the disk reserve's first check.
 */
function startBake(spec: BakeSpec, deps: BakeDeps, signal: AbortSignal): BakeStart {
  const { config } = deps;
  const step = (s: BakeStep) => deps.onStep?.(s);
  const logins = new Logins({ resolver: deps.resolver, docker: deps.docker, scrubber: deps.scrubber, clock: deps.clock, random: deps.random, retries: config.pullRetries, step, signal });
  const units = unitsOf(spec);
  for (const u of units) if (u.credential && !u.services[0]!.ref.digest) logins.prefetch(u.credential);
  const docker = awaitDocker(deps, signal, step);
  const disk = reserveOf(deps);
  if (disk) {
    void docker.then((dockerError) => {
      if (!dockerError && !signal.aborted) disk.prepare(signal);
    });
  }
  return { spec, step, units, logins, docker };
}

async function bakeUnits(start: BakeStart, deps: BakeDeps, signal: AbortSignal, started: number, emit: BakeEmit): Promise<BakeResult> {
  const { spec, step, units, logins } = start;
  const turn: PullTurn = { slots: new Slots(deps.config.pullConcurrency), failed: false };
  const run: BakeRun = { spec, deps, signal, step, emit, turn, logins, results: new Map() };
  const dockerError = await start.docker;
  const reserve = reserveDisk(run);
  turn.full = reserve.full;
  if (reserve.beforePull) turn.beforePull = reserve.beforePull;
  const pulls: UnitTurn = { dockerError, full: reserve.full, pullSignal: AbortSignal.any([signal, reserve.full]) };
  // Images that need no credential first: their pulls go out while the credentials of the others are fetched.
  const ordered = [...units.filter((u) => !u.credential), ...units.filter((u) => u.credential)];

  // A failure to report (the outbox on a full disk) ends the bake only once every pull it started has ended.
  let unreported: unknown;
  try {
    await Promise.all(ordered.map((unit) => bakeUnit(run, unit, pulls).catch((err: unknown) => void (unreported ??= err))));
  } finally {
    reserve.stop();
  }
  if (unreported !== undefined) throw unreported;
  return finish(run, started);
}

/** Docker's socket, waited for: its error where it never answered (the bake was not interrupted). */
async function awaitDocker(deps: BakeDeps, signal: AbortSignal, step: (s: BakeStep) => void): Promise<AgentError | undefined> {
  try {
    await waitForDocker(deps.docker, deps.clock, signal, (message) => step({ kind: "docker-wait", message }));
    return undefined;
  } catch (err) {
    return signal.aborted ? undefined : asAgentError(err);
  }
}

/**
 * The disk reserve, checked before the first real pull and then while the pulls run: the bake fails
 * with disk_full while the box still has room. A bake of images Docker already has pulls nothing and
 * is never held. `beforePull` (none without a reserve to check) checks it once; `full` is aborted
 * when the reserve stops the pulls; `stop` ends the watching.
 */
function reserveDisk(run: BakeRun): { beforePull?: () => Promise<void>; full: AbortSignal; stop: () => void } {
  const { deps, signal, step } = run;
  const full = new AbortController();
  let stopWatching = () => undefined as void;
  const stop = () => stopWatching();
  const disk = reserveOf(deps);
  if (!disk) return { full: full.signal, stop };
  let reserveChecked: Promise<void> | undefined;
  const beforePull = () =>
    (reserveChecked ??= (async () => {
      const short = await diskProblem(disk, deps, signal, step);
      if (short) throw short;
      stopWatching = watchDisk(disk, full, deps, signal, step);
    })());
  return { beforePull, full: full.signal, stop };
}

/** What every image's turn shares: Docker's error where it never answered, the disk reserve's signal, and the signal the pulls run under. */
interface UnitTurn {
  dockerError: AgentError | undefined;
  full: AbortSignal;
  pullSignal: AbortSignal;
}

/** One image, from start to its recorded outcome. */
async function bakeUnit(run: BakeRun, unit: Unit, t: UnitTurn): Promise<void> {
  const { deps, signal } = run;
  if (signal.aborted) return record(run, unit, { status: "skipped", durationMs: 0 });
  if (t.dockerError) return record(run, unit, { status: "failed", durationMs: 0, error: t.dockerError.toBody() });
  const t0 = deps.clock.now();
  let outcome: Outcome;
  try {
    outcome = await pullUnit({ unit, deps, logins: run.logins, signal: t.pullSignal, step: run.step, turn: run.turn });
    if (outcome.status === "pulled") await recordPulled(run, unit, outcome);
  } catch (err) {
    // An image that had not started when the disk reserve stopped the pulls is skipped, like any after a failure.
    outcome = t.full.aborted && err === t.full.reason ? { status: "skipped", durationMs: 0 } : { status: "failed", durationMs: deps.clock.now() - t0, error: failureOf(run, err) };
  }
  await record(run, unit, outcome);
}

/** Records a pulled image as the agent's (image cleanup removes only those), where the bake keeps such records. */
async function recordPulled(run: BakeRun, unit: Unit, outcome: Outcome): Promise<void> {
  const { deps, spec } = run;
  if (!deps.pulled) return;
  const ref = unit.services[0]!.ref;
  await deps.pulled.record({
    ref: ref.digest ? `${ref.name}@${ref.digest}` : `${ref.name}:${ref.tag}`,
    name: ref.name,
    digest: outcome.digest!,
    imageId: outcome.imageId!,
    pulledAt: new Date(deps.clock.now()).toISOString(),
    bakeId: spec.bakeId,
  });
}

/** What a failed image reports: `interrupted` once the bake was stopped, its own error otherwise, scrubbed. */
function failureOf(run: BakeRun, err: unknown): ErrorBody {
  const e = run.signal.aborted ? interruptedError(run.signal.reason) : asAgentError(err);
  return { ...e.toBody(), message: run.deps.scrubber.scrub(e.message) };
}

/** An image's outcome: told to the renderer, kept for each of its services, and sent as their events. */
async function record(run: BakeRun, unit: Unit, r: Outcome): Promise<void> {
  if (r.status === "failed") {
    run.firstFailure ??= r.error;
    run.turn.failed = true;
  }
  run.step({
    kind: "image-done",
    image: unit.key,
    services: unit.services.map((s) => s.name),
    status: r.status,
    durationMs: r.durationMs,
    ...(r.digest ? { digest: r.digest } : {}),
    ...(r.error ? { error: r.error } : {}),
  });
  for (const s of unit.services) {
    const signature = signatureOf(unit, s, r);
    const result: ServiceResult = { name: s.name, image: s.image, ...r, ...(signature ? { signature } : {}) };
    run.results.set(s.name, result);
    run.deps.onResult?.(result);
    if (r.status === "pulled" || r.status === "present") {
      const fields = { service: s.name, image: s.image, digest: r.digest, ...(r.status === "present" ? { cached: true } : {}), ...(signature ? { signature } : {}) };
      await run.emit("service.pulled", fields);
    } else if (r.status === "failed") {
      await run.emit("service.failed", { service: s.name, image: s.image, ...(r.error ? { error: r.error } : {}) });
    }
  }
}

/** The bake's result once every image has one: failed (and why), or succeeded with its manifest written. */
async function finish(run: BakeRun, started: number): Promise<BakeResult> {
  const { spec, deps, signal, results } = run;
  const { clock } = deps;
  const services = spec.services.map((s) => results.get(s.name)!);
  const result: BakeResult = {
    bakeId: spec.bakeId,
    status: "failed",
    services,
    startedAt: new Date(started).toISOString(),
    durationMs: clock.now() - started,
  };
  if (signal.aborted || run.firstFailure) {
    // An interruption is why the bake ended, whatever else failed before it.
    const error = signal.aborted ? failureOf(run, signal.reason) : run.firstFailure!;
    result.error = error;
    const first = services.find((s) => s.status === "failed");
    await run.emit("bake.failed", { error, ...(first && !signal.aborted ? { service: first.name, image: first.image } : {}) });
    return result;
  }
  if (!deps.noManifest) {
    result.manifestPath = await writeManifest(deps.config.stateDir, deps.scrubber.scrubValue(manifestOf(spec, results, run.logins, clock.now())));
  }
  result.status = "succeeded";
  result.durationMs = clock.now() - started;
  await run.emit("bake.succeeded");
  return result;
}

/** The signature that verified a service's image with its own policy, once the image is there. */
function signatureOf(unit: Unit, s: Service, r: Outcome): VerifiedSignature | undefined {
  if (!s.signaturePolicy || (r.status !== "pulled" && r.status !== "present")) return undefined;
  return unit.verified?.signatures.get(s.signaturePolicy.id);
}

/** docs/reference.md §6: what a later reconcile needs, never a secret. */
function manifestOf(spec: BakeSpec, results: Map<string, ServiceResult>, logins: Logins, now: number): Manifest {
  return {
    bakeId: spec.bakeId,
    bakedAt: new Date(now).toISOString(),
    services: spec.services.map((s) => {
      const r = results.get(s.name)!;
      const c = s.credential;
      const usernameIsSecret = c?.type === "token" && (c.usernameIsSecret === true || logins.usernameWasSecret(c.id));
      return {
        name: s.name,
        image: s.image,
        imageId: r.imageId ?? "",
        digest: r.digest ?? "",
        registry: s.ref.registry,
        registryCredentialId: c?.id ?? null,
        credentialType: c?.type ?? null,
        parameterName: c?.parameterName ?? null,
        username: c?.type === "token" && !usernameIsSecret ? (c.username ?? null) : null,
        usernameIsSecret,
        ...(r.signature ? { signature: r.signature } : {}),
      };
    }),
  };
}
