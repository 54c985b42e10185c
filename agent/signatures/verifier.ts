// docs/reference.md §2a steps 1–3: resolve the reference to the digest the
// registry serves now (hashing the manifest itself), find both forms of cosign
// signature of exactly that digest, and check each against the policy's keys
// and the digest its signed payload names.
import { AgentError } from "../errors/agent-error.ts";
import { RegistryClient, splitDigest, TooLargeError, type Descriptor, type Manifest, type RegistryClientDeps } from "../registry/client.ts";
import { parseReference } from "../spec/reference.ts";
import { BUNDLE_MEDIA_TYPE, verifyBundle } from "./bundle.ts";
import { CERTIFICATE_ANNOTATION, keyThatSigned, payloadProblem, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE } from "./classic.ts";
import type { SignatureCandidate, SignatureFormat, SignatureVerifier, VerificationReport, VerifiedSignature, VerifyRequest } from "./types.ts";

/** cosign 2's classic signature stored as an OCI 1.1 referrer (cosign: cmd/cosign/cli/options/registry.go, pkg/oci/remote/write_test.go). */
const COSIGN_REFERRER_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json";

/** A payload or a bundle is a few KB; these bound what a hostile registry can make the agent read. */
export const MAX_SIGNATURE_BLOB_BYTES = 2 * 1024 * 1024;
/** Signatures looked at per form: cosign appends a layer per signature, and a registry could list thousands. */
export const MAX_CANDIDATES = 64;
/** Platform manifests of an index whose signatures are looked for, to say why the index's are missing. */
const MAX_PLATFORMS = 16;

export type SignatureVerifierDeps = RegistryClientDeps;

const INDEX_TYPES = new Set(["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]);

/** `sha256:<hex>` → `sha256-<hex>`: the tag both of cosign's forms are found under. */
function digestTag(digest: string): string {
  return digest.replace(":", "-");
}

function platformOf(d: Descriptor): string {
  const p = d.platform;
  return p ? [p.os, p.architecture, p.variant].filter(Boolean).join("/") : "a platform";
}

/** Content the registry served that cannot be a signature: a rejection, not a registry failure. */
function contentProblem(err: unknown): string | undefined {
  if (err instanceof TooLargeError) return err.message;
  if (err instanceof AgentError && (err.code === "digest_mismatch" || err.code === "image_unsupported")) return err.message;
  // A signature listed but gone (garbage-collected, deleted): one rejected candidate, while the others may still verify.
  if (err instanceof AgentError && err.code === "image_not_found") return `listed, but the registry does not serve it (${err.message})`;
  return undefined;
}

interface Found {
  candidate: SignatureCandidate;
  accepted?: VerifiedSignature;
  /** The digest a verified payload names, when it is not the image's. */
  names?: string;
}

class Verification {
  readonly found: Found[] = [];

  private readonly client: RegistryClient;
  private readonly req: VerifyRequest;
  private readonly digest: string;

  constructor(client: RegistryClient, req: VerifyRequest, digest: string) {
    this.client = client;
    this.req = req;
    this.digest = digest;
  }

  private add(format: SignatureFormat, source: string, outcome: { keyId: string } | { rejected: string; names?: string }): void {
    if ("keyId" in outcome) {
      this.found.push({ candidate: { format, source }, accepted: { policyId: this.req.policy.id, format, keyId: outcome.keyId } });
    } else {
      this.found.push({ candidate: { format, source, rejected: outcome.rejected }, ...(outcome.names ? { names: outcome.names } : {}) });
    }
  }

  /** The classic form: each layer of the `<alg>-<hex>.sig` manifest. */
  async classic(): Promise<void> {
    const sig = await this.client.findManifest(`${digestTag(this.digest)}.sig`, this.req.signal);
    if (sig) await this.classicLayers(sig.json.layers ?? []);
  }

  /** Simple-signing layers, each one signature: of the `.sig` tag, or of a referrer (cosign 2's `--registry-referrers-mode=oci-1-1`). */
  private async classicLayers(layers: Descriptor[]): Promise<void> {
    const { signal, policy } = this.req;
    for (const layer of layers.slice(0, MAX_CANDIDATES)) {
      const source = layer.digest;
      if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) {
        this.add("cosign", source, { rejected: `layer of type ${layer.mediaType ?? "(none)"}, not a simple-signing payload` });
        continue;
      }
      const encoded = layer.annotations?.[SIGNATURE_ANNOTATION];
      if (!encoded) {
        this.add("cosign", source, { rejected: `no ${SIGNATURE_ANNOTATION} annotation` });
        continue;
      }
      let payload: Buffer;
      try {
        payload = await this.client.blob(layer.digest, MAX_SIGNATURE_BLOB_BYTES, signal);
      } catch (err) {
        const problem = contentProblem(err);
        if (!problem) throw err;
        this.add("cosign", source, { rejected: problem });
        continue;
      }
      const key = keyThatSigned(payload, Buffer.from(encoded, "base64"), policy.keys);
      if (!key) {
        const keyless = layer.annotations?.[CERTIFICATE_ANNOTATION] ? " (a keyless signature, with a certificate)" : "";
        this.add("cosign", source, { rejected: `signed by a key not in ${policy.id}${keyless}, or tampered: the signature does not verify with any of its keys` });
        continue;
      }
      const problem = payloadProblem(payload, this.digest);
      this.add("cosign", source, problem ? { rejected: problem.problem, ...(problem.names ? { names: problem.names } : {}) } : { keyId: key.keyId });
    }
  }

  /**
   * What the digest's referrers hold, or the `<alg>-<hex>` tag index's where the
   * registry has no referrers API: Sigstore bundles, and cosign 2's classic
   * signatures attached as referrers (`--registry-referrers-mode=oci-1-1`).
   */
  async referrers(): Promise<void> {
    const { signal } = this.req;
    let listed = await this.client.referrers(this.digest, signal);
    if (listed === undefined) listed = (await this.client.findManifest(digestTag(this.digest), signal))?.json.manifests ?? [];
    listed = listed.filter((d) => this.wellFormed(d));
    for (const d of listed.filter((x) => x.artifactType === COSIGN_REFERRER_TYPE).slice(0, MAX_CANDIDATES)) {
      const sig = await this.client.findManifest(d.digest, signal).catch((err: unknown) => {
        const problem = contentProblem(err);
        if (!problem) throw err;
        this.add("cosign", d.digest, { rejected: problem });
        return undefined;
      });
      if (sig) await this.classicLayers(sig.json.layers ?? []);
    }
    await this.bundles(listed.filter((x) => x.artifactType === BUNDLE_MEDIA_TYPE).slice(0, MAX_CANDIDATES));
  }

  /** A listed signature whose digest is not one (`../latest`) is never asked for: a path, not content its digest pins. */
  private wellFormed(d: Descriptor): boolean {
    if (typeof d.digest === "string" && splitDigest(d.digest)) return true;
    const format: SignatureFormat | undefined = d.artifactType === BUNDLE_MEDIA_TYPE ? "sigstore-bundle" : d.artifactType === COSIGN_REFERRER_TYPE ? "cosign" : undefined;
    if (format) this.add(format, String(d.digest), { rejected: "listed with a digest that is not one" });
    return false;
  }

  private async bundles(bundles: Descriptor[]): Promise<void> {
    const { signal, policy } = this.req;
    for (const d of bundles) {
      let manifest: Manifest | undefined;
      let json: unknown;
      try {
        manifest = await this.client.findManifest(d.digest, signal);
        if (!manifest) {
          this.add("sigstore-bundle", d.digest, { rejected: "listed, but the registry has no such manifest" });
          continue;
        }
        const layer = (manifest.json.layers ?? []).find((l) => l.mediaType === BUNDLE_MEDIA_TYPE);
        if (!layer) {
          this.add("sigstore-bundle", d.digest, { rejected: `no layer of type ${BUNDLE_MEDIA_TYPE}` });
          continue;
        }
        const subject = manifest.json.subject?.digest;
        if (subject !== undefined && subject !== this.digest) {
          this.add("sigstore-bundle", d.digest, { rejected: `refers to ${subject}, not ${this.digest}` });
          continue;
        }
        json = JSON.parse((await this.client.blob(layer.digest, MAX_SIGNATURE_BLOB_BYTES, signal)).toString("utf8"));
      } catch (err) {
        const problem = err instanceof SyntaxError ? "the bundle is not JSON" : contentProblem(err);
        if (!problem) throw err;
        this.add("sigstore-bundle", d.digest, { rejected: problem });
        continue;
      }
      const outcome = verifyBundle(json, policy.keys, policy.id, this.digest);
      this.add("sigstore-bundle", d.digest, "key" in outcome ? { keyId: outcome.key.keyId } : outcome);
    }
  }
}

/** The index's platform manifests signed where the index is not: said, so that the operator signs the index (cosign sign <image>@<index digest>). */
async function platformSignatures(client: RegistryClient, req: VerifyRequest, index: Manifest): Promise<SignatureCandidate[]> {
  const out: SignatureCandidate[] = [];
  for (const m of (index.json.manifests ?? []).slice(0, MAX_PLATFORMS)) {
    if (!splitDigest(m.digest)) continue;
    const v = new Verification(client, req, m.digest);
    await v.classic();
    await v.referrers();
    for (const f of v.found) {
      out.push({
        format: f.candidate.format,
        source: f.candidate.source,
        rejected: `signs the ${platformOf(m)} manifest ${m.digest}, not the index ${index.digest} the reference resolves to`,
      });
    }
  }
  return out;
}

/** Why a payload that names another digest names it, when that digest is one of the index's platforms. */
function explain(found: Found, index: Manifest | undefined): SignatureCandidate {
  const platform = found.names ? index?.json.manifests?.find((m) => m.digest === found.names) : undefined;
  if (!platform || !found.candidate.rejected) return found.candidate;
  return { ...found.candidate, rejected: `${found.candidate.rejected} (the ${platformOf(platform)} manifest, not the index the reference resolves to)` };
}

export function createSignatureVerifier(deps: SignatureVerifierDeps): SignatureVerifier {
  return {
    async verify(req) {
      const ref = parseReference(req.image);
      const client = new RegistryClient(deps, { registry: ref.name.slice(0, ref.name.length - ref.path.length - 1), path: ref.path, ...(req.auth ? { auth: req.auth } : {}) });
      const wanted = ref.digest ?? ref.tag ?? "latest";
      const resolved = await client.manifest(wanted, req.signal).catch((err: unknown) => {
        throw err instanceof TooLargeError ? new AgentError("image_unsupported", `${req.image}: ${err.message}`) : err;
      });
      const digest = resolved.digest;
      const v = new Verification(client, req, digest);
      await v.classic();
      await v.referrers();
      const index = INDEX_TYPES.has(resolved.mediaType) ? resolved : undefined;
      let candidates = v.found.map((f) => explain(f, index));
      if (candidates.length === 0 && index) candidates = await platformSignatures(client, req, index);
      const accepted = v.found.find((f) => f.accepted)?.accepted;
      const report: VerificationReport = { image: req.image, digest, candidates, ...(accepted ? { accepted } : {}) };
      return report;
    },
  };
}

/** The report in words, for image_signature_invalid's message and the verify command. */
export function reportWords(report: VerificationReport): string {
  const count = (format: SignatureFormat) => report.candidates.filter((c) => c.format === format).length;
  // A pinned reference names its digest already.
  const image = report.image.includes("@") ? report.image : `${report.image}@${report.digest}`;
  const head = `${image}: ${count("cosign")} cosign signature(s), ${count("sigstore-bundle")} Sigstore bundle(s)`;
  if (report.candidates.length === 0) return `${head}: no signatures found`;
  const reasons = report.candidates.map((c) => `${c.format} ${c.source}: ${c.rejected ?? "verified"}`);
  return `${head}: ${reasons.join("; ")}`;
}
