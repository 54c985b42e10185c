// Builds multi-layer test images (FROM scratch equivalents: each layer one file of
// random bytes) and pushes them straight through the registry HTTP API, so the
// test dockerd starts cold: nothing is built in, or left behind by, the engine.
import { createHash, randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";

export interface Layer {
  /** gzip-compressed tar */
  blob: Buffer;
  digest: string;
  diffId: string;
}

export interface PushedImage {
  /** `host/repo:tag` */
  reference: string;
  repository: string;
  tag: string;
  /** manifest digest: what Docker records in RepoDigests */
  digest: string;
  /** config digest: the image ID Docker reports */
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
export function randomLayer(bytes: number, name = `layer-${randomBytes(4).toString("hex")}.bin`): Layer {
  const tar = tarOneFile(name, randomBytes(bytes));
  const blob = gzipSync(tar, { level: 1 });
  return { blob, digest: sha256(blob), diffId: sha256(tar) };
}

export interface RegistryTarget {
  /** Where to send HTTP (e.g. `http://127.0.0.2`). */
  url: string;
  /** The registry's name in references (e.g. `ghcr.io`). */
  host: string;
  user?: string;
  password?: string;
}

async function call(target: RegistryTarget, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Response> {
  const h: Record<string, string> = { ...headers };
  if (target.user !== undefined) h["authorization"] = "Basic " + Buffer.from(`${target.user}:${target.password ?? ""}`).toString("base64");
  const res = await fetch(target.url + path, { method, headers: h, body: body ? new Uint8Array(body) : undefined });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res;
}

async function pushBlob(target: RegistryTarget, repo: string, blob: Buffer, digest: string): Promise<void> {
  const head = await fetch(`${target.url}/v2/${repo}/blobs/${digest}`, {
    method: "HEAD",
    headers: target.user ? { authorization: "Basic " + Buffer.from(`${target.user}:${target.password}`).toString("base64") } : {},
  });
  if (head.status === 200) return;
  // distribution starts an upload session on POST and completes it on PUT.
  const started = await call(target, "POST", `/v2/${repo}/blobs/uploads/`);
  const location = new URL(started.headers.get("location") ?? "", target.url);
  location.searchParams.set("digest", digest);
  await call(target, "PUT", location.pathname + location.search, blob, {
    "content-type": "application/octet-stream",
    "content-length": String(blob.length),
  });
}

/** Pushes an image of the given layers; returns its manifest digest and image ID. */
export async function pushImage(target: RegistryTarget, repository: string, tag: string, layers: Layer[]): Promise<PushedImage> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
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
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.docker.distribution.manifest.v2+json",
      config: { mediaType: "application/vnd.docker.container.image.v1+json", size: config.length, digest: configDigest },
      layers: layers.map((l) => ({ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", size: l.blob.length, digest: l.digest })),
    }),
  );
  await call(target, "PUT", `/v2/${repository}/manifests/${tag}`, manifest, {
    "content-type": "application/vnd.docker.distribution.manifest.v2+json",
  });
  return {
    reference: `${target.host}/${repository}:${tag}`,
    repository,
    tag,
    digest: sha256(manifest),
    imageId: configDigest,
    layers,
    bytes: layers.reduce((n, l) => n + l.blob.length, 0),
  };
}

/** An image of `count` random layers of `bytes` each, plus any shared base layers first. */
export function pushRandomImage(target: RegistryTarget, repository: string, tag: string, opts: { layers?: number; bytes?: number; base?: Layer[] } = {}): Promise<PushedImage> {
  const own = Array.from({ length: opts.layers ?? 2 }, () => randomLayer(opts.bytes ?? 64 * 1024));
  return pushImage(target, repository, tag, [...(opts.base ?? []), ...own]);
}
