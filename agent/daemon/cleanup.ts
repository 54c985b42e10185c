// docs/reference.md §8 image cleanup, as the Amazon ECS agent does it (ECS_IMAGE_CLEANUP_INTERVAL,
// ECS_IMAGE_MINIMUM_CLEANUP_AGE): every imageCleanupIntervalSeconds the daemon
// removes the images that the agent itself pulled (state/pulled.ts), that
// neither the current manifest nor the imageCleanupKeepBakes previous ones name,
// that no container uses (running or stopped), and that were pulled longer ago
// than imageCleanupMinAgeSeconds. It removes only the references the agent owns
// (the tag it pulled, its repository digest) through the Engine API; an image a
// person also tagged loses only the agent's references and stays. The daemon
// runs it in the bakes' turn, so a bake and a cleanup never race.
import { DockerHttpError, type DockerPort, type ListedContainer, type ListedImage } from "../docker/port.ts";
import { repoDigestName, parseReference } from "../spec/reference.ts";
import { pruneManifestHistory, readManifest, readManifestHistory, type Manifest } from "../state/manifest.ts";
import type { PulledImage, PulledImages } from "../state/pulled.ts";
import { runningBakes, type RunningBake } from "../state/running-bakes.ts";

export interface CleanupInputs {
  pulled: PulledImage[];
  /** The current manifest and the kept previous ones. */
  kept: Manifest[];
  images: ListedImage[];
  containers: ListedContainer[];
  /** Bakes in progress in any process (a CLI bake beside the daemon). */
  running: RunningBake[];
  now: number;
  minAgeMs: number;
}

export interface Removal {
  imageId: string;
  /** The references to delete: the agent's own, as Docker lists them. */
  refs: string[];
  /** Every reference Docker lists for the image: a bake in progress may name it by any of them. */
  listed: string[];
  size: number;
  entries: PulledImage[];
}

export interface CleanupPlan {
  remove: Removal[];
  keep: { imageId: string; refs: string[]; reason: string }[];
  /** Entries about images Docker no longer has, or has only under others' references: nothing of the agent's left. */
  forget: PulledImage[];
}

/** A reference in one comparable form (`docker.io/library/redis:7`, `ghcr.io/a/b@sha256:…`); undefined if it does not parse. */
function normalized(ref: string): string | undefined {
  const at = ref.indexOf("@");
  if (at >= 0) {
    const name = repoDigestName(ref);
    return name ? `${name}${ref.slice(at)}` : undefined;
  }
  try {
    return parseReference(ref).canonical;
  } catch {
    return undefined;
  }
}

/** The bake in progress that needs an image listed under `refs`, if any. */
function neededBy(running: RunningBake[], refs: string[]): string | undefined {
  const listed = new Set(refs.map(normalized));
  return running.find((b) => b.images.some((image) => listed.has(normalized(image))))?.bakeId;
}

/** Which references of which images to remove, and why the others stay. Pure. */
export function planCleanup(i: CleanupInputs): CleanupPlan {
  const plan: CleanupPlan = { remove: [], keep: [], forget: [] };
  const byId = new Map<string, PulledImage[]>();
  for (const e of i.pulled) byId.set(e.imageId, [...(byId.get(e.imageId) ?? []), e]);
  const named = new Map<string, string>();
  for (const m of i.kept) {
    for (const s of m.services) {
      named.set(s.imageId, m.bakeId);
      named.set(`${parseReference(s.image).name}@${s.digest}`, m.bakeId);
    }
  }
  const used = new Set(i.containers.map((c) => c.imageId));
  for (const [imageId, entries] of byId) {
    const image = i.images.find((x) => x.id === imageId);
    if (!image) {
      plan.forget.push(...entries);
      continue;
    }
    const listed = [...image.repoTags, ...image.repoDigests];
    const ours = new Set(entries.flatMap((e) => [normalized(e.ref), `${e.name}@${e.digest}`]));
    const refs = listed.filter((r) => ours.has(normalized(r) ?? ""));
    const digests = image.repoDigests.map(normalized);
    const bake = named.get(imageId) ?? digests.map((d) => named.get(d ?? "")).find((b) => b !== undefined);
    const newest = Math.max(...entries.map((e) => Date.parse(e.pulledAt)));
    const running = neededBy(i.running, listed);
    let reason: string | undefined;
    if (refs.length === 0) reason = "none of its references is the agent's any more";
    else if (running) reason = `bake ${running} in progress needs it`;
    else if (bake) reason = `named by bake ${bake}`;
    else if (used.has(imageId)) reason = "a container uses it";
    else if (i.now - newest < i.minAgeMs) reason = `pulled ${Math.round((i.now - newest) / 1000)} s ago, under imageCleanupMinAgeSeconds`;
    if (refs.length === 0) plan.forget.push(...entries);
    if (reason) plan.keep.push({ imageId, refs: listed, reason });
    else plan.remove.push({ imageId, refs, listed, size: image.size, entries });
  }
  return plan;
}

export interface CleanupOutcome {
  at: string;
  /** Images deleted: their last reference was the agent's. */
  removed: { imageId: string; refs: string[]; bytes: number }[];
  /** Images that lost the agent's references and stay, under references of others. */
  untagged: { imageId: string; refs: string[] }[];
  bytes: number;
  kept: { imageId: string; refs: string[]; reason: string }[];
  failures: { imageId: string; error: string }[];
}

export interface CleanupDeps {
  docker: DockerPort;
  /** Asked again before each removal: a CLI bake may have started since the plan was made. */
  running: () => Promise<RunningBake[]>;
  forget: (e: PulledImage) => Promise<void>;
  /** One line per image removed (or only untagged), and one per image kept (why). */
  onRemoved?: (r: { imageId: string; refs: string[]; bytes: number }) => void;
  onUntagged?: (r: { imageId: string; refs: string[] }) => void;
  onKept?: (k: { imageId: string; refs: string[]; reason: string }) => void;
}

/**
 * One DELETE /images/{ref}. A reference already gone is not a failure: the classic
 * store removes a repository's digest references with its last tag, and a daemon
 * killed mid-cleanup leaves a plan half done.
 */
async function removeRef(docker: DockerPort, ref: string, signal: AbortSignal): Promise<string[]> {
  try {
    return (await docker.removeImage(ref, signal)).deleted;
  } catch (err) {
    if (err instanceof DockerHttpError && err.statusCode === 404) return [];
    throw err;
  }
}

/** Carries out a plan: each removal alone, a failure recorded and the rest carried on. */
export async function runCleanup(plan: CleanupPlan, deps: CleanupDeps, now: number, signal: AbortSignal): Promise<CleanupOutcome> {
  const out: CleanupOutcome = { at: new Date(now).toISOString(), removed: [], untagged: [], bytes: 0, kept: [...plan.keep], failures: [] };
  for (const k of plan.keep) deps.onKept?.(k);
  for (const e of plan.forget) await deps.forget(e);
  for (const r of plan.remove) {
    if (signal.aborted) break;
    try {
      const bake = neededBy(await deps.running(), r.listed);
      if (bake) {
        const k = { imageId: r.imageId, refs: r.refs, reason: `bake ${bake} in progress needs it` };
        out.kept.push(k);
        deps.onKept?.(k);
        continue;
      }
      let gone = false;
      for (const ref of r.refs) gone = (await removeRef(deps.docker, ref, signal)).includes(r.imageId) || gone;
      if (gone) {
        const removed = { imageId: r.imageId, refs: r.refs, bytes: r.size };
        out.removed.push(removed);
        out.bytes += removed.bytes;
        deps.onRemoved?.(removed);
      } else {
        out.untagged.push({ imageId: r.imageId, refs: r.refs });
        deps.onUntagged?.({ imageId: r.imageId, refs: r.refs });
      }
      for (const e of r.entries) await deps.forget(e);
    } catch (err) {
      out.failures.push({ imageId: r.imageId, error: (err as Error).message });
    }
  }
  return out;
}

/** One cleanup: what Docker has and uses, what the agent pulled and the kept bakes name, then the plan carried out. */
export async function cleanupImages(
  deps: Omit<CleanupDeps, "forget" | "running"> & { stateDir: string; pulled: PulledImages; keepBakes: number; minAgeSeconds: number; now: () => number },
  signal: AbortSignal,
): Promise<CleanupOutcome> {
  const running = () => runningBakes(deps.stateDir);
  const [pulled, history, current, images, containers, inProgress] = await Promise.all([
    deps.pulled.list(),
    readManifestHistory(deps.stateDir, deps.keepBakes + 1),
    readManifest(deps.stateDir),
    deps.docker.listImages(signal),
    deps.docker.listContainers(signal),
    running(),
  ]);
  // The current manifest counts even where no history was kept (written by an older agent).
  const kept = current ? [current, ...history] : history;
  const plan = planCleanup({ pulled, kept, images, containers, running: inProgress, now: deps.now(), minAgeMs: deps.minAgeSeconds * 1000 });
  const outcome = await runCleanup(plan, { ...deps, running, forget: (e) => deps.pulled.forget(e) }, deps.now(), signal);
  await pruneManifestHistory(deps.stateDir, deps.keepBakes + 1);
  return outcome;
}
