// docs/reference.md §6/§7: <stateDir>/outbox/ holds every event not yet delivered, one file
// each, written atomically before any attempt to send it, removed on a 2xx.
// File names sort in the order events were made. A file that cannot be read
// (permissions) stays where it is; one that is not an event is moved aside to
// outbox/corrupt/ for a person to look at. Neither is ever deleted.
import { rename, rm } from "node:fs/promises";
import path from "node:path";
import type { Clock } from "../clock.ts";
import { listStateFiles, mkdirShared, readStateText, writeFileAtomic } from "./atomic.ts";

export interface OutboxEntry {
  file: string;
  boxId: string;
  bakeId: string;
  event: Record<string, unknown> & { id: string };
}

/** What reading an outbox file found: an event, nothing (it was delivered meanwhile), or a file to leave or set aside. */
export type OutboxRead =
  | { kind: "event"; entry: OutboxEntry }
  | { kind: "gone" }
  | { kind: "unreadable"; reason: string }
  | { kind: "corrupt"; reason: string };

export class Outbox {
  readonly dir: string;
  private seq = 0;
  private readonly clock: Pick<Clock, "now">;

  constructor(stateDir: string, clock: Pick<Clock, "now">) {
    this.dir = path.join(stateDir, "outbox");
    this.clock = clock;
  }

  async put(boxId: string, bakeId: string, event: Record<string, unknown> & { id: string }): Promise<string> {
    const name = `${this.clock.now().toString().padStart(15, "0")}-${String(this.seq++).padStart(6, "0")}-${event.id}.json`;
    const file = path.join(this.dir, name);
    await writeFileAtomic(file, JSON.stringify({ boxId, bakeId, event }));
    return file;
  }

  async list(): Promise<string[]> {
    return (await listStateFiles(this.dir)).map((f) => path.join(this.dir, f));
  }

  async read(file: string): Promise<OutboxRead> {
    let text: string;
    try {
      text = await readStateText(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { kind: "gone" };
      return { kind: "unreadable", reason: code ?? (err as Error).message };
    }
    try {
      const v = JSON.parse(text) as Omit<OutboxEntry, "file">;
      if (typeof v.boxId !== "string" || typeof v.bakeId !== "string" || typeof v.event?.id !== "string") {
        return { kind: "corrupt", reason: "not an outbox event (boxId, bakeId and event.id are required)" };
      }
      return { kind: "event", entry: { file, ...v } };
    } catch (err) {
      return { kind: "corrupt", reason: `not JSON: ${(err as Error).message}` };
    }
  }

  /** Moves a file that is not an event out of the way, into outbox/corrupt/. Returns where it went. */
  async setAside(file: string): Promise<string> {
    const dir = path.join(this.dir, "corrupt");
    await mkdirShared(dir);
    const to = path.join(dir, path.basename(file));
    await rename(file, to);
    return to;
  }

  async remove(file: string): Promise<void> {
    await rm(file, { force: true });
  }

  async depth(): Promise<number> {
    return (await this.list()).length;
  }
}
