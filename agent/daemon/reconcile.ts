// Reconcile (SPEC §8, SIGHUP and start): every image of the manifest that
// Docker no longer has (pruned, new volume) is pulled again by its digest, with
// its credential rebuilt from the manifest's metadata, through the bake engine.
import type { BakeResult } from "../bake/types.ts";
import type { DockerPort } from "../docker/port.ts";
import { parseReference } from "../spec/reference.ts";
import { parseEcrHost } from "../spec/registry.ts";
import type { BakeSpec, Credential, Service } from "../spec/schema.ts";
import { readManifest, type Manifest } from "../state/manifest.ts";

export interface ReconcileOutcome {
  checked: number;
  missing: string[];
  result?: BakeResult;
}

function credentialOf(s: Manifest["services"][number]): Credential | undefined {
  if (!s.registryCredentialId || !s.credentialType) return undefined;
  const c: Credential = { id: s.registryCredentialId, type: s.credentialType, registry: s.registry };
  if (s.credentialType === "ecr") {
    const ecr = parseEcrHost(s.registry);
    if (ecr) c.ecr = ecr;
  } else {
    if (s.usernameIsSecret) c.usernameIsSecret = true;
    else if (s.username) c.username = s.username;
    if (s.parameterName) c.parameterName = s.parameterName;
  }
  return c;
}

export async function missingServices(m: Manifest, docker: DockerPort, signal: AbortSignal): Promise<Service[]> {
  const out: Service[] = [];
  for (const s of m.services) {
    const pinned = `${parseReference(s.image).name}@${s.digest}`;
    if (await docker.inspectImage(pinned, signal)) continue;
    const credential = credentialOf(s);
    out.push({ name: s.name, image: pinned, ref: parseReference(pinned), catalog: !credential, ...(credential ? { credential } : {}) });
  }
  return out;
}

export async function reconcile(
  deps: { stateDir: string; docker: DockerPort; run: (spec: BakeSpec, signal: AbortSignal) => Promise<BakeResult> },
  signal: AbortSignal,
): Promise<ReconcileOutcome> {
  const m = await readManifest(deps.stateDir);
  if (!m) return { checked: 0, missing: [] };
  const missing = await missingServices(m, deps.docker, signal);
  if (missing.length === 0) return { checked: m.services.length, missing: [] };
  const credentials = [...new Map(missing.flatMap((s) => (s.credential ? [[s.credential.id, s.credential] as const] : []))).values()];
  const result = await deps.run({ bakeId: m.bakeId, orgId: "", credentials, services: missing }, signal);
  return { checked: m.services.length, missing: missing.map((s) => s.name), result };
}
