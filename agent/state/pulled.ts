// docs/reference.md §6: which images the agent itself pulled, so that image cleanup (docs/reference.md §8)
// never touches one it did not: <stateDir>/images/, one file per reference and
// image ID (a tag that moves leaves the old image's entry behind, which is what
// lets cleanup find it). One file each, written atomically, so that a root
// `bake` and the daemon record side by side without losing each other's entries.
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import path from "node:path";
import * as z from "zod";
import { listStateFiles, readStateFile, writeFileAtomic } from "./atomic.ts";

const entrySchema = z.object({
  /** The reference the agent pulled (`ghcr.io/acme/api:1`, or `name@sha256:…`). */
  ref: z.string(),
  /** Its repository (`ghcr.io/acme/api`). */
  name: z.string(),
  /** The repository digest Docker recorded. */
  digest: z.string(),
  imageId: z.string(),
  pulledAt: z.string(),
  bakeId: z.string(),
});

export type PulledImage = z.infer<typeof entrySchema> & { file: string };

export class PulledImages {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, "images");
  }

  async record(e: Omit<PulledImage, "file">): Promise<void> {
    const name = createHash("sha256").update(`${e.ref}\n${e.imageId}`).digest("hex").slice(0, 32);
    await writeFileAtomic(path.join(this.dir, `${name}.json`), JSON.stringify(e));
  }

  /** Every entry that reads; a file that does not is left for a person (never deleted unread). */
  async list(): Promise<PulledImage[]> {
    const out: PulledImage[] = [];
    for (const f of await listStateFiles(this.dir)) {
      const file = path.join(this.dir, f);
      const entry = await readStateFile(file, entrySchema);
      if (entry) out.push({ ...entry, file });
    }
    return out;
  }

  async forget(e: PulledImage): Promise<void> {
    await rm(e.file, { force: true });
  }
}
