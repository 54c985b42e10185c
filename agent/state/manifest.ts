// docs/reference.md §6: <stateDir>/manifest.json, written atomically only after a fully
// successful bake. Holds credential metadata a later reconcile needs, never a
// secret. Each one is also kept in <stateDir>/manifests/ (newest first by name),
// for image cleanup: the images the last bakes name are the box's.
import { rm } from "node:fs/promises";
import path from "node:path";
import * as z from "zod";
import { listStateFiles, readStateFile, readStateText, writeFileAtomic } from "./atomic.ts";

const manifestSchema = z.object({
  bakeId: z.string(),
  bakedAt: z.string(),
  services: z.array(
    z.object({
      name: z.string(),
      image: z.string(),
      imageId: z.string(),
      digest: z.string(),
      registry: z.string(),
      registryCredentialId: z.string().nullable(),
      credentialType: z.enum(["token", "ecr"]).nullable(),
      parameterName: z.string().nullable(),
      username: z.string().nullable().optional(),
      /** The username is the secret itself (DigitalOcean): `username` is null, a reconcile logs in with the secret. */
      usernameIsSecret: z.boolean().optional(),
      /** docs/reference.md §2a: the signature that verified the image, where the service names a policy. */
      signature: z.object({ policyId: z.string(), format: z.enum(["cosign", "sigstore-bundle"]), keyId: z.string() }).optional(),
    }),
  ),
});

export type Manifest = z.infer<typeof manifestSchema>;

export function manifestPath(stateDir: string): string {
  return path.join(stateDir, "manifest.json");
}

const historyDir = (stateDir: string) => path.join(stateDir, "manifests");

export async function writeManifest(stateDir: string, m: Manifest): Promise<string> {
  const file = manifestPath(stateDir);
  const text = JSON.stringify(m, null, 2) + "\n";
  // History first: a crash between the two leaves the old current manifest and one more kept one, never less.
  await writeFileAtomic(path.join(historyDir(stateDir), `${m.bakedAt.replace(/[:.]/g, "-")}-${m.bakeId}.json`), text, 0o644);
  await writeFileAtomic(file, text, 0o644);
  return file;
}

/** The manifests of the newest `count` successful bakes, newest first (the first is the current one). */
export async function readManifestHistory(stateDir: string, count: number): Promise<Manifest[]> {
  const files = (await listStateFiles(historyDir(stateDir))).reverse();
  const out: Manifest[] = [];
  for (const f of files) {
    if (out.length === count) break;
    const m = await readStateFile(path.join(historyDir(stateDir), f), manifestSchema);
    if (m) out.push(m);
  }
  return out;
}

/** Removes kept manifests beyond the newest `keep`. */
export async function pruneManifestHistory(stateDir: string, keep: number): Promise<void> {
  const files = (await listStateFiles(historyDir(stateDir)).catch(() => [])).reverse();
  for (const f of files.slice(keep)) await rm(path.join(historyDir(stateDir), f), { force: true });
}

/** undefined when there is no manifest yet. */
export async function readManifest(stateDir: string): Promise<Manifest | undefined> {
  let text: string;
  try {
    text = await readStateText(manifestPath(stateDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return manifestSchema.parse(JSON.parse(text));
}
