// Builds multi-layer test images (FROM scratch equivalents: each layer one file of
// random bytes) and pushes them straight through the registry HTTP API, so the
// test dockerd starts cold: nothing is built in, or left behind by, the engine.
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
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
export function randomLayer(bytes: number, name = `layer-${randomBytes(4).toString("hex")}.bin`): Layer {
  const tar = tarOneFile(name, randomBytes(bytes));
  const blob = gzipSync(tar, { level: 1 });
  return { blob, digest: sha256(blob), diffId: sha256(tar) };
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

async function pushBlob(target: RegistryTarget, repo: string, blob: Buffer, digest: string): Promise<void> {
  const head = await call(target, "HEAD", `/v2/${repo}/blobs/${digest}`, undefined, {}, () => true);
  if (head.status === 200) return;
  // distribution starts an upload session on POST and completes it on PUT.
  const started = await call(target, "POST", `/v2/${repo}/blobs/uploads/`);
  const location = new URL(String(started.headers["location"] ?? ""), target.url);
  location.searchParams.set("digest", digest);
  await call(target, "PUT", target.url + location.pathname + location.search, blob, { "content-type": "application/octet-stream" });
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
