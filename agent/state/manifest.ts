// SPEC §6: <stateDir>/manifest.json, written atomically only after a fully
// successful bake. Holds credential metadata a later reconcile needs, never a secret.
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as z from "zod";
import { writeFileAtomic } from "./atomic.ts";

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
    }),
  ),
});

export type Manifest = z.infer<typeof manifestSchema>;

export function manifestPath(stateDir: string): string {
  return path.join(stateDir, "manifest.json");
}

export async function writeManifest(stateDir: string, m: Manifest): Promise<string> {
  const file = manifestPath(stateDir);
  await writeFileAtomic(file, JSON.stringify(m, null, 2) + "\n", 0o644);
  return file;
}

/** undefined when there is no manifest yet. */
export async function readManifest(stateDir: string): Promise<Manifest | undefined> {
  let text: string;
  try {
    text = await readFile(manifestPath(stateDir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return manifestSchema.parse(JSON.parse(text));
}
