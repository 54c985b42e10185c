// Bakes in progress, as files in <stateDir>/running/: image cleanup (docs/reference.md §8)
// never removes an image a bake in progress needs. Inside the daemon bakes and
// cleanups take turns; this is for a `slothbox-agent bake` an operator (or
// Packer) runs beside the daemon, a separate process. A marker whose process is
// gone (killed -9, power lost) no longer counts; nor does one whose PID another
// process has since taken (the process's start time, from /proc, tells them apart).
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import * as z from "zod";
import { listStateFiles, readStateFile, writeFileAtomic } from "./atomic.ts";

const markerSchema = z.object({ bakeId: z.string(), pid: z.number().int(), started: z.string().optional(), images: z.array(z.string()) });
export type RunningBake = z.infer<typeof markerSchema>;

const dirOf = (stateDir: string) => path.join(stateDir, "running");
const fileOf = (stateDir: string, bakeId: string) => path.join(dirOf(stateDir), `${encodeURIComponent(bakeId)}.json`);

/** Says "this bake is running and needs these images" until the returned function is called. */
export async function markRunning(stateDir: string, bakeId: string, images: string[]): Promise<() => Promise<void>> {
  const file = fileOf(stateDir, bakeId);
  await writeFileAtomic(file, JSON.stringify({ bakeId, pid: process.pid, started: startTime(process.pid), images }));
  return () => rm(file, { force: true });
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces). */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function alive(m: RunningBake): boolean {
  try {
    process.kill(m.pid, 0);
  } catch (err) {
    // EPERM: it exists, under another user (the daemon's dynamic user beside a root bake).
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const now = m.started === undefined ? undefined : startTime(m.pid);
  return now === undefined || now === m.started;
}

/** The bakes in progress, in any process on this box; markers of dead processes are removed. */
export async function runningBakes(stateDir: string): Promise<RunningBake[]> {
  const out: RunningBake[] = [];
  for (const f of await listStateFiles(dirOf(stateDir))) {
    const file = path.join(dirOf(stateDir), f);
    const marker = await readStateFile(file, markerSchema);
    if (!marker) continue;
    if (alive(marker)) out.push(marker);
    else await rm(file, { force: true }).catch(() => undefined);
  }
  return out;
}
