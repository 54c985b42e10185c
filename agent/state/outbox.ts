// SPEC §6/§7: <stateDir>/outbox/ holds every event not yet delivered, one file
// each, written atomically before any attempt to send it, removed on a 2xx.
// File names sort in the order events were made.
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "./atomic.ts";

export interface OutboxEntry {
  file: string;
  boxId: string;
  bakeId: string;
  event: Record<string, unknown> & { id: string };
}

export class Outbox {
  readonly dir: string;
  private seq = 0;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, "outbox");
  }

  async put(boxId: string, bakeId: string, event: Record<string, unknown> & { id: string }): Promise<string> {
    const name = `${Date.now().toString().padStart(15, "0")}-${String(this.seq++).padStart(6, "0")}-${event.id}.json`;
    const file = path.join(this.dir, name);
    await writeFileAtomic(file, JSON.stringify({ boxId, bakeId, event }));
    return file;
  }

  async list(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((f) => f.endsWith(".json") && !f.startsWith(".")).sort().map((f) => path.join(this.dir, f));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  }

  /** undefined for a file that vanished or cannot be parsed (it is then set aside). */
  async read(file: string): Promise<OutboxEntry | undefined> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch {
      return undefined;
    }
    try {
      const v = JSON.parse(text) as Omit<OutboxEntry, "file">;
      if (typeof v.boxId !== "string" || typeof v.bakeId !== "string" || typeof v.event?.id !== "string") return undefined;
      return { file, ...v };
    } catch {
      return undefined;
    }
  }

  async remove(file: string): Promise<void> {
    await rm(file, { force: true });
  }

  async depth(): Promise<number> {
    return (await this.list()).length;
  }
}
