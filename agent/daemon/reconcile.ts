// Reconcile (docs/reference.md §8, SIGHUP and start): every image of the manifest that
// Docker no longer has (pruned, new volume) is pulled again by its digest, with
// its credential rebuilt from the manifest's metadata, through the bake engine;
// then each service's own reference (`app:1`, what `docker rmi app:1` removes
// and what containers are started by) is restored to point at that digest.
import type { BakeResult } from "../bake/types.ts";
import type { DockerPort } from "../docker/port.ts";
import { parseReference } from "../spec/reference.ts";
import { parseEcrHost } from "../spec/registry.ts";
import type { BakeSpec, Credential, Service } from "../spec/schema.ts";
import { readManifest, type Manifest } from "../state/manifest.ts";

export interface ReconcileOutcome {
  checked: number;
  /** Services whose image was pulled again. */
  missing: string[];
  /** Services whose tag was restored to the manifest's digest. */
  retagged: string[];
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

async function missingServices(m: Manifest, docker: DockerPort, signal: AbortSignal): Promise<Service[]> {
  const out: Service[] = [];
  for (const s of m.services) {
    const pinned = `${parseReference(s.image).name}@${s.digest}`;
    if (await docker.inspectImage(pinned, signal)) continue;
    const credential = credentialOf(s);
    out.push({ name: s.name, image: pinned, ref: parseReference(pinned), ...(credential ? { credential } : {}) });
  }
  return out;
}

/** Points each by-tag service reference back at its manifest digest where Docker lost it or it moved. */
async function restoreTags(m: Manifest, docker: DockerPort, signal: AbortSignal): Promise<string[]> {
  const retagged: string[] = [];
  for (const s of m.services) {
    const ref = parseReference(s.image);
    if (!ref.tag || ref.digest) continue;
    const pinned = await docker.inspectImage(`${ref.name}@${s.digest}`, signal);
    if (!pinned) continue;
    const tagged = await docker.inspectImage(ref.canonical, signal);
    if (tagged?.id === pinned.id) continue;
    await docker.tagImage(`${ref.name}@${s.digest}`, ref.name, ref.tag, signal);
    retagged.push(s.name);
  }
  return retagged;
}

export async function reconcile(
  deps: { stateDir: string; docker: DockerPort; run: (spec: BakeSpec, signal: AbortSignal) => Promise<BakeResult> },
  signal: AbortSignal,
): Promise<ReconcileOutcome> {
  const m = await readManifest(deps.stateDir);
  if (!m) return { checked: 0, missing: [], retagged: [] };
  const missing = await missingServices(m, deps.docker, signal);
  let result: BakeResult | undefined;
  if (missing.length > 0) {
    const credentials = [...new Map(missing.flatMap((s) => (s.credential ? [[s.credential.id, s.credential] as const] : []))).values()];
    result = await deps.run({ bakeId: m.bakeId, orgId: "", credentials, services: missing }, signal);
  }
  const retagged = await restoreTags(m, deps.docker, signal);
  return { checked: m.services.length, missing: missing.map((s) => s.name), retagged, ...(result ? { result } : {}) };
}
