// The disk reserve (docs/reference.md §4): a bake never takes Docker's data root below the
// larger of diskReserveBytes and diskReservePercent of its size, so the box
// keeps working (logs, the journal, containers' writes) when an image is larger
// than the disk has room for. Checked before a bake pulls and while it pulls;
// a bake short of it fails with disk_full while there is still room, the pull
// stopped and the manifest untouched. The check is the kernel's (statfs) on the
// path the engine reports (GET /info → DockerRootDir), as the agent sees it.
import { statfs } from "node:fs/promises";
import { AgentError } from "../errors/agent-error.ts";

export interface DiskSpace {
  /** Bytes an unprivileged writer may still use (statfs f_bavail). */
  free: number;
  total: number;
}

export interface DiskReserveDeps {
  dataRoot: (signal: AbortSignal) => Promise<string>;
  space: (path: string) => Promise<DiskSpace>;
  reserveBytes: number;
  reservePercent: number;
}

export type ReserveCheck = { kind: "ok"; free: number; reserve: number; path: string } | { kind: "short"; error: AgentError } | { kind: "unknown"; reason: string };

export function reserveFor(total: number, reserveBytes: number, reservePercent: number): number {
  return Math.max(reserveBytes, Math.ceil((total * reservePercent) / 100));
}

export function formatBytes(n: number): string {
  for (const [unit, size] of [
    ["GB", 1e9],
    ["MB", 1e6],
    ["kB", 1e3],
  ] as const) {
    if (n >= size) return `${(n / size).toFixed(1)} ${unit}`;
  }
  return `${n} B`;
}

export async function statfsSpace(path: string): Promise<DiskSpace> {
  const s = await statfs(path);
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

/**
 * The disk reserve of one runtime: the CLI's one bake, or every bake of the daemon. Where
 * Docker keeps images is read (GET /info) at each bake's start; the daemon's later bakes may
 * start on the data root an earlier read found while this one is under way (GET /info is slow
 * on a busy engine: it counts images and containers), which is trusted to let a bake start,
 * never to stop one: a check that finds it short waits for the read and checks again where
 * Docker now says. The checks while the pulls run use the new read.
 */
export class DiskReserve {
  private readonly deps: DiskReserveDeps;
  /** Where Docker said it keeps images, at the latest read that answered. */
  private root: string | undefined;
  /** This bake's read: the root, or undefined where it failed or named none. */
  private reading: Promise<string | undefined> | undefined;

  constructor(deps: DiskReserveDeps) {
    this.deps = deps;
  }

  /** Starts this bake's read of where Docker keeps images; a failed read is made again by a check that needs it, which reports its error. */
  prepare(signal: AbortSignal): void {
    this.reading = this.deps.dataRoot(signal).then(
      (root) => (root ? (this.root = root) : undefined),
      () => undefined,
    );
  }

  get disabled(): boolean {
    return this.deps.reserveBytes === 0 && this.deps.reservePercent === 0;
  }

  /** Whether the data root has the reserve free; `unknown` (and the bake goes on) where the agent cannot see the engine's disk. */
  async check(signal: AbortSignal): Promise<ReserveCheck> {
    const known = this.root;
    if (known !== undefined) {
      const r = await this.checkAt(known);
      if (r.kind === "ok") return r;
    }
    // Not known yet, or short or unseen there: where Docker says now.
    let root: string | undefined = await this.reading;
    if (!root) {
      try {
        root = (await this.deps.dataRoot(signal)) || undefined;
      } catch (err) {
        return { kind: "unknown", reason: `Docker did not say where it keeps images (GET /info): ${(err as Error).message}` };
      }
    }
    if (!root) return { kind: "unknown", reason: "Docker did not say where it keeps images (GET /info has no DockerRootDir)" };
    this.root = root;
    return this.checkAt(root);
  }

  private async checkAt(root: string): Promise<ReserveCheck> {
    const { deps } = this;
    let space: DiskSpace;
    try {
      space = await deps.space(root);
    } catch (err) {
      return { kind: "unknown", reason: `cannot see Docker's data root ${root} from the agent: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    const reserve = reserveFor(space.total, deps.reserveBytes, deps.reservePercent);
    if (space.free >= reserve) return { kind: "ok", free: space.free, reserve, path: root };
    const why = deps.reserveBytes >= reserve ? `diskReserveBytes ${formatBytes(deps.reserveBytes)}` : `diskReservePercent ${deps.reservePercent} % of ${formatBytes(space.total)}`;
    return {
      kind: "short",
      error: new AgentError("disk_full", `${formatBytes(space.free)} free on ${root} (Docker's data root), reserve ${formatBytes(reserve)} (${why}): the bake stopped before the disk fills`),
    };
  }
}
