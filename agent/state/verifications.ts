// docs/reference.md §2a: signature verifications already made, so that a warm bake of a
// pinned, signed image stays warm (no registry request for its signatures).
// <stateDir>/verifications/, one file per digest and set of keys, written
// atomically like the other state files, so that a root `bake` and the daemon
// record side by side. Only accepted verifications are kept: an image refused
// today may be signed tomorrow, and is looked at again.
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import path from "node:path";
import * as z from "zod";
import type { SignatureFormat } from "../signatures/types.ts";
import { listStateFiles, readStateFile, writeFileAtomic } from "./atomic.ts";

/** Far more than one box's images over its bakes; past it the oldest entries go (a verification is made again). */
export const KEEP_VERIFICATIONS = 512;

const entrySchema = z.object({
  digest: z.string(),
  /** The policy's key IDs, sorted: the set the verification was made against. */
  keyIds: z.array(z.string()),
  format: z.enum(["cosign", "sigstore-bundle"]),
  /** The key whose signature verified. */
  keyId: z.string(),
  verifiedAt: z.string(),
});

export interface Verification {
  format: SignatureFormat;
  keyId: string;
}

/**
 * Bumped whenever what the verifier accepts narrows (a check added, a hole closed): a
 * verification kept under older rules is then never found, and the next bake verifies again.
 * 2: a bundle's statement must be cosign's signature predicate, not any attestation.
 */
const VERIFIER_RULES = 2;

const fileOf = (digest: string, keyIds: readonly string[]) =>
  createHash("sha256")
    .update(`rules ${VERIFIER_RULES}\n${digest}\n${[...keyIds].sort().join("\n")}`)
    .digest("hex")
    .slice(0, 40) + ".json";

export class Verifications {
  readonly dir: string;
  private readonly keep: number;

  constructor(stateDir: string, keep = KEEP_VERIFICATIONS) {
    this.dir = path.join(stateDir, "verifications");
    this.keep = keep;
  }

  /** The verification made for exactly this digest and this set of keys; undefined when there is none (or it does not read). */
  async find(digest: string, keyIds: readonly string[]): Promise<Verification | undefined> {
    const sorted = [...keyIds].sort();
    const e = await readStateFile(path.join(this.dir, fileOf(digest, sorted)), entrySchema);
    // The file's name is a hash: its content must say the same digest and keys, and a key of the set.
    if (!e || e.digest !== digest || e.keyIds.join("\n") !== sorted.join("\n") || !sorted.includes(e.keyId)) return undefined;
    return { format: e.format, keyId: e.keyId };
  }

  async record(digest: string, keyIds: readonly string[], v: Verification, now: number): Promise<void> {
    const entry = { digest, keyIds: [...keyIds].sort(), format: v.format, keyId: v.keyId, verifiedAt: new Date(now).toISOString() };
    await writeFileAtomic(path.join(this.dir, fileOf(digest, keyIds)), JSON.stringify(entry));
    await this.prune();
  }

  private async prune(): Promise<void> {
    const files = await listStateFiles(this.dir);
    if (files.length <= this.keep) return;
    const dated: { f: string; at: string }[] = [];
    for (const f of files) dated.push({ f, at: (await readStateFile(path.join(this.dir, f), entrySchema))?.verifiedAt ?? "" });
    dated.sort((a, b) => a.at.localeCompare(b.at));
    for (const { f } of dated.slice(0, dated.length - this.keep)) await rm(path.join(this.dir, f), { force: true });
  }
}
