// Builds multi-layer test images (FROM scratch equivalents: each layer one file of
// random bytes) and pushes them straight through the registry HTTP API, so the
// test dockerd starts cold: nothing is built in, or left behind by, the engine.
// Images come in the shapes registries really hold: Docker schema 2 and OCI image
// manifests, gzip or zstd layers, and multi-platform images — an OCI image index
// or a Docker manifest list — with the attestation manifest buildx attaches.
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { constants, gzipSync, zstdCompressSync } from "node:zlib";

export type Compression = "gzip" | "zstd";

export interface Layer {
  /** The compressed tar. */
  blob: Buffer;
  digest: string;
  diffId: string;
  compression: Compression;
}

export interface PushedImage {
  /** `host/repo:tag` */
  reference: string;
  repository: string;
  tag: string;
  /** manifest digest: what Docker records in RepoDigests */
  digest: string;
  /** config digest: the image ID the classic store reports (the containerd store reports `digest`) */
  imageId: string;
  layers: Layer[];
  bytes: number;
}

const sha256 = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");

/** A one-file ustar archive (POSIX header, content padded to 512, two zero blocks). */
function tarOneFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, "utf8");
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(content.length.toString(8).padStart(11, "0") + "\0", 124);
  header.write(Math.floor(Date.UTC(2026, 0, 1) / 1000).toString(8).padStart(11, "0") + "\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)]);
}

/** A layer holding one file of `bytes` random bytes (incompressible, like real binaries). */
export function randomLayer(bytes: number, opts: { compression?: Compression } = {}): Layer {
  const tar = tarOneFile(`layer-${randomBytes(4).toString("hex")}.bin`, randomBytes(bytes));
  const compression = opts.compression ?? "gzip";
  // Random bytes do not compress: the fastest level of either costs the least.
  const blob = compression === "zstd" ? zstdCompressSync(tar, { params: { [constants.ZSTD_c_compressionLevel]: 1 } }) : gzipSync(tar, { level: 1 });
  return { blob, digest: sha256(blob), diffId: sha256(tar), compression };
}

export interface RegistryTarget {
  /** Where to send HTTP (e.g. `http://127.0.0.2`, `https://127.0.0.10`). */
  url: string;
  /** The registry's name in references (e.g. `ghcr.io`). */
  host: string;
  user?: string;
  password?: string;
  /** For TLS registries: the CA to trust and the name to verify. */
  ca?: string;
  servername?: string;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function send(target: RegistryTarget, method: string, url: string, body: Buffer | undefined, headers: Record<string, string>): Promise<Reply> {
  const u = new URL(url);
  const mod = u.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      {
        method,
        host: u.hostname,
        port: u.port || undefined,
        path: u.pathname + u.search,
        headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) },
        // A connection for each request, never one from the keep-alive pool: tests call these helpers
        // right after generating layers (randomBytes, gzipSync), which holds the event loop for seconds
        // on a busy machine (17 s measured); a pooled connection idle that long may have been closed by
        // its server (a Node server, such as the token server, closes one after 6 s) without the client
        // having had a turn to notice, and the request went out on it: ECONNRESET, "socket hang up".
        // A fresh loopback connection costs well under a millisecond.
        agent: false,
        ...(u.protocol === "https:" ? { ca: target.ca, servername: target.servername } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const basic = (t: RegistryTarget) => "Basic " + Buffer.from(`${t.user}:${t.password ?? ""}`).toString("base64");
const tokens = new WeakMap<RegistryTarget, Map<string, string>>();

/** One registry call, answering a Bearer challenge with a token for the asked scope. */
async function call(target: RegistryTarget, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}, ok = (s: number) => s < 300): Promise<Reply> {
  const url = path.startsWith("http") ? path : target.url + path;
  const cache = tokens.get(target) ?? new Map<string, string>();
  tokens.set(target, cache);
  const repo = /\/v2\/(.+?)\/(blobs|manifests)\//.exec(new URL(url).pathname)?.[1] ?? "";
  const auth = () => (cache.get(repo) ? `Bearer ${cache.get(repo)}` : target.user !== undefined ? basic(target) : undefined);
  const h = () => ({ ...headers, ...(auth() ? { authorization: auth()! } : {}) });
  let res = await send(target, method, url, body, h());
  const challenge = String(res.headers["www-authenticate"] ?? "");
  if (res.status === 401 && challenge.startsWith("Bearer ")) {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const realm = new URL(params["realm"]!);
    realm.searchParams.set("service", params["service"] ?? "");
    if (params["scope"]) realm.searchParams.set("scope", params["scope"]);
    const t = await send(target, "GET", realm.toString(), undefined, target.user !== undefined ? { authorization: basic(target) } : {});
    if (t.status !== 200) throw new Error(`token for ${params["scope"]}: ${t.status} ${t.body}`);
    cache.set(repo, (JSON.parse(t.body.toString()) as { token: string }).token);
    res = await send(target, method, url, body, h());
  }
  if (!ok(res.status)) throw new Error(`${method} ${path}: ${res.status} ${res.body}`);
  return res;
}

export async function pushBlob(target: RegistryTarget, repo: string, blob: Buffer, digest: string): Promise<void> {
  const head = await call(target, "HEAD", `/v2/${repo}/blobs/${digest}`, undefined, {}, () => true);
  if (head.status === 200) return;
  // distribution starts an upload session on POST and completes it on PUT.
  const started = await call(target, "POST", `/v2/${repo}/blobs/uploads/`);
  const location = new URL(String(started.headers["location"] ?? ""), target.url);
  location.searchParams.set("digest", digest);
  await call(target, "PUT", target.url + location.pathname + location.search, blob, { "content-type": "application/octet-stream" });
}

/**
 * Media types, as the specifications define them:
 * Docker schema 2 and its manifest list — https://github.com/distribution/distribution/blob/main/docs/content/spec/manifest-v2-2.md;
 * OCI — https://github.com/opencontainers/image-spec/blob/main/media-types.md (manifest.md, image-index.md,
 * layer.md: `+zstd` layers since image-spec 1.1).
 */
const MEDIA = {
  docker: {
    manifest: "application/vnd.docker.distribution.manifest.v2+json",
    list: "application/vnd.docker.distribution.manifest.list.v2+json",
    config: "application/vnd.docker.container.image.v1+json",
    layer: { gzip: "application/vnd.docker.image.rootfs.diff.tar.gzip" },
  },
  oci: {
    manifest: "application/vnd.oci.image.manifest.v1+json",
    index: "application/vnd.oci.image.index.v1+json",
    config: "application/vnd.oci.image.config.v1+json",
    layer: { gzip: "application/vnd.oci.image.layer.v1.tar+gzip", zstd: "application/vnd.oci.image.layer.v1.tar+zstd" },
  },
  inToto: "application/vnd.in-toto+json",
  // Helm's chart in an OCI registry (helm.sh/docs/topics/registries: "Helm chart manifest").
  helm: { config: "application/vnd.cncf.helm.config.v1+json", chart: "application/vnd.cncf.helm.chart.content.v1.tar+gzip" },
} as const;

/** docker: Docker schema 2 (gzip layers only); oci: an OCI image manifest. */
export type ManifestFormat = "docker" | "oci";

interface BuiltManifest {
  body: Buffer;
  mediaType: string;
  digest: string;
  configDigest: string;
}

function layerMediaType(format: ManifestFormat, compression: Compression): string {
  if (format === "oci") return MEDIA.oci.layer[compression];
  if (compression !== "gzip") throw new Error(`Docker schema 2 has no media type for ${compression} layers: use an OCI manifest`);
  return MEDIA.docker.layer.gzip;
}

export async function putManifest(target: RegistryTarget, repository: string, reference: string, m: { body: Buffer; mediaType: string }): Promise<void> {
  await call(target, "PUT", `/v2/${repository}/manifests/${reference}`, m.body, { "content-type": m.mediaType });
}

/** GET a manifest (as its pusher) or a blob: the raw bytes and, for a manifest, its media type. */
export async function getContent(target: RegistryTarget, repository: string, kind: "manifests" | "blobs", reference: string): Promise<{ body: Buffer; mediaType: string }> {
  const accept = kind === "manifests" ? [MEDIA.oci.manifest, MEDIA.oci.index, MEDIA.docker.manifest, MEDIA.docker.list].join(", ") : "*/*";
  const res = await call(target, "GET", `/v2/${repository}/${kind}/${reference}`, undefined, { accept });
  return { body: res.body, mediaType: String(res.headers["content-type"] ?? "") };
}

/** Pushes the layers and the config of an image for one platform, and builds (does not push) its manifest. */
async function buildManifest(target: RegistryTarget, repository: string, layers: Layer[], format: ManifestFormat, architecture: string): Promise<BuiltManifest> {
  const config = Buffer.from(
    JSON.stringify({
      architecture,
      os: "linux",
      created: "2026-01-01T00:00:00Z",
      config: { Cmd: ["/nothing"], Labels: { "slothbox.test": repository } },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: "2026-01-01T00:00:00Z", created_by: "COPY" })),
    }),
  );
  const configDigest = sha256(config);
  for (const l of layers) await pushBlob(target, repository, l.blob, l.digest);
  await pushBlob(target, repository, config, configDigest);
  const media = MEDIA[format];
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: media.manifest,
      config: { mediaType: media.config, size: config.length, digest: configDigest },
      layers: layers.map((l) => ({ mediaType: layerMediaType(format, l.compression), size: l.blob.length, digest: l.digest })),
    }),
  );
  return { body, mediaType: media.manifest, digest: sha256(body), configDigest };
}

/** Pushes an image of the given layers; returns its manifest digest and image ID. */
export async function pushImage(
  target: RegistryTarget,
  repository: string,
  tag: string,
  layers: Layer[],
  opts: { format?: ManifestFormat } = {},
): Promise<PushedImage> {
  const m = await buildManifest(target, repository, layers, opts.format ?? "docker", "amd64");
  await putManifest(target, repository, tag, m);
  return {
    reference: `${target.host}/${repository}:${tag}`,
    repository,
    tag,
    digest: m.digest,
    imageId: m.configDigest,
    layers,
    bytes: layers.reduce((n, l) => n + l.blob.length, 0),
  };
}

/**
 * A Helm chart pushed as Helm pushes it (`helm push`): an OCI image manifest whose config is
 * a chart's metadata and whose one layer is the chart's .tgz — content a registry serves,
 * and no engine can run.
 */
export async function pushHelmChart(target: RegistryTarget, repository: string, tag: string): Promise<{ reference: string; digest: string }> {
  const chart = randomLayer(4096);
  const config = Buffer.from(JSON.stringify({ name: repository.split("/").at(-1), version: "0.1.0", apiVersion: "v2", description: "a chart, not an image" }));
  const configDigest = sha256(config);
  await pushBlob(target, repository, chart.blob, chart.digest);
  await pushBlob(target, repository, config, configDigest);
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.oci.manifest,
      config: { mediaType: MEDIA.helm.config, digest: configDigest, size: config.length },
      layers: [{ mediaType: MEDIA.helm.chart, digest: chart.digest, size: chart.blob.length }],
    }),
  );
  await putManifest(target, repository, tag, { body, mediaType: MEDIA.oci.manifest });
  return { reference: `${target.host}/${repository}:${tag}`, digest: sha256(body) };
}

/** An image of `layers` random layers of `bytes` each, plus any shared base layers first; zstd layers in an OCI manifest. */
export function pushRandomImage(
  target: RegistryTarget,
  repository: string,
  tag: string,
  opts: { layers?: number; bytes?: number; base?: Layer[]; format?: ManifestFormat; compression?: Compression } = {},
): Promise<PushedImage> {
  const own = Array.from({ length: opts.layers ?? 2 }, () => randomLayer(opts.bytes ?? 64 * 1024, { compression: opts.compression ?? "gzip" }));
  return pushImage(target, repository, tag, [...(opts.base ?? []), ...own], { format: opts.format ?? (opts.compression === "zstd" ? "oci" : "docker") });
}

/** A platform's image inside a multi-platform one. */
export interface PlatformImage {
  /** The platform manifest's digest: what a pin on this one platform names. */
  digest: string;
  /** Its config digest. */
  configDigest: string;
}

export type Architecture = "amd64" | "arm64";

export interface PushedMultiPlatform {
  /** `host/repo:tag` */
  reference: string;
  repository: string;
  tag: string;
  /** The index's (or list's) own digest. */
  digest: string;
  /** Each platform's image, linux/<architecture>. */
  platforms: Partial<Record<Architecture, PlatformImage>>;
}

/**
 * The attestation manifest buildx attaches to an image (BuildKit's "Image Attestation
 * Storage", https://docs.docker.com/build/metadata/attestations/attestation-storage/ and
 * moby/buildkit docs/attestations/attestation-storage.md): an OCI image manifest whose
 * config is an image config for `unknown/unknown` and whose one layer is an in-toto
 * statement (`application/vnd.in-toto+json`, annotated with its predicate type) about
 * the platform manifest `subject`. Returns its index descriptor: platform
 * `unknown/unknown`, annotated `vnd.docker.reference.type: attestation-manifest` and
 * `vnd.docker.reference.digest: <subject>`, so that no runtime picks it.
 */
async function pushAttestation(target: RegistryTarget, repository: string, subject: string, architecture: Architecture): Promise<Record<string, unknown>> {
  const predicateType = "https://slsa.dev/provenance/v0.2";
  const statement = Buffer.from(
    JSON.stringify({
      _type: "https://in-toto.io/Statement/v0.1",
      predicateType,
      subject: [{ name: `pkg:docker/${target.host}/${repository}?platform=linux%2F${architecture}`, digest: { sha256: subject.slice("sha256:".length) } }],
      predicate: { builder: { id: "" }, buildType: "https://mobyproject.org/buildkit@v1", metadata: { buildInvocationID: randomBytes(8).toString("hex") } },
    }),
  );
  const statementDigest = sha256(statement);
  const config = Buffer.from(JSON.stringify({ architecture: "unknown", os: "unknown", config: {}, rootfs: { type: "layers", diff_ids: [statementDigest] } }));
  const configDigest = sha256(config);
  await pushBlob(target, repository, statement, statementDigest);
  await pushBlob(target, repository, config, configDigest);
  const body = Buffer.from(
    JSON.stringify({
      mediaType: MEDIA.oci.manifest,
      schemaVersion: 2,
      config: { mediaType: MEDIA.oci.config, digest: configDigest, size: config.length },
      layers: [{ mediaType: MEDIA.inToto, digest: statementDigest, size: statement.length, annotations: { "in-toto.io/predicate-type": predicateType } }],
    }),
  );
  const digest = sha256(body);
  await putManifest(target, repository, digest, { body, mediaType: MEDIA.oci.manifest });
  return {
    mediaType: MEDIA.oci.manifest,
    digest,
    size: body.length,
    annotations: { "vnd.docker.reference.digest": subject, "vnd.docker.reference.type": "attestation-manifest" },
    platform: { architecture: "unknown", os: "unknown" },
  };
}

/**
 * A multi-platform image as `docker buildx build --platform linux/amd64,linux/arm64` pushes
 * it: the linux/amd64 and linux/arm64 images (each two random layers; or only those of
 * `platforms`), then the attestation manifest of the first one, all under one index — an
 * OCI image index (image-index.md) or a Docker manifest list (manifest-v2-2.md, "Manifest
 * List") — tagged `tag`. The platform manifests are OCI in an index, Docker schema 2 in a list.
 */
export async function pushMultiPlatformImage(
  target: RegistryTarget,
  repository: string,
  tag: string,
  opts: { kind: "oci-index" | "docker-list"; platforms?: [Architecture, ...Architecture[]] },
): Promise<PushedMultiPlatform> {
  const format: ManifestFormat = opts.kind === "oci-index" ? "oci" : "docker";
  const architectures = opts.platforms ?? ["amd64", "arm64"];
  const platforms: Partial<Record<Architecture, PlatformImage>> = {};
  const descriptors: Record<string, unknown>[] = [];
  for (const architecture of architectures) {
    const layers = [randomLayer(64 * 1024), randomLayer(64 * 1024)];
    const m = await buildManifest(target, repository, layers, format, architecture);
    await putManifest(target, repository, m.digest, m);
    platforms[architecture] = { digest: m.digest, configDigest: m.configDigest };
    descriptors.push({ mediaType: m.mediaType, digest: m.digest, size: m.body.length, platform: { architecture, os: "linux" } });
  }
  descriptors.push(await pushAttestation(target, repository, platforms[architectures[0]]!.digest, architectures[0]));
  const mediaType = opts.kind === "oci-index" ? MEDIA.oci.index : MEDIA.docker.list;
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests: descriptors }));
  await putManifest(target, repository, tag, { body, mediaType });
  return {
    reference: `${target.host}/${repository}:${tag}`,
    repository,
    tag,
    digest: sha256(body),
    platforms,
  };
}
