// The agent's own registry client (OCI distribution spec), for what the Engine
// API cannot fetch: manifests by tag or digest, blobs, referrers (docs/reference.md
// §2a). It reaches a registry as dockerd does: Docker Hub's names at
// registry-1.docker.io; HTTPS, and plain HTTP only for a registry dockerd treats
// as insecure (its GET /info RegistryConfig: the host's IndexConfigs entry, else
// an address of the host inside InsecureRegistryCIDRs — dockerd's isSecureIndex);
// Basic or Bearer-token authentication with the pull's credential, every token
// registered with the scrubber. What it reads is bounded in size and time, and
// content asked for by digest is hashed and compared before it is used.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md
import { createHash } from "node:crypto";
import { BlockList, isIP } from "node:net";
import type { RegistryAuth } from "../credentials/types.ts";
import type { RegistryConfig } from "../docker/port.ts";
import { AgentError } from "../errors/agent-error.ts";
import { classifyDockerMessage, TLS_CODE } from "../errors/classify.ts";
import type { ErrorCode } from "../errors/codes.ts";
import { DOCKER_HUB, isDockerHub } from "../spec/registry.ts";
import { basicAuthorization, parseChallenge, type Challenge } from "./auth.ts";
import type { RegistryFetch } from "./transport.ts";

export const MEDIA = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
} as const;

const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(", ");

/** containerd's and distribution's own bound on a manifest. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_TOKEN_BYTES = 1024 * 1024;
const MAX_ERROR_BYTES = 64 * 1024;
/** Pages of referrers followed through Link: rel="next" before the rest is left unread. */
const MAX_REFERRER_PAGES = 16;
export const DEFAULT_TIMEOUT_MS = 30_000;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/** Where Docker Hub's images are served, whichever of its names the reference used (dockerd's DefaultV2Registry). */
const DOCKER_HUB_REGISTRY = "registry-1.docker.io";

/** The host the agent's own requests for `registry` go to: registry-1.docker.io for Docker Hub's names, as dockerd's. */
export function requestHost(registry: string): string {
  return isDockerHub(registry) ? DOCKER_HUB_REGISTRY : registry;
}

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** An image manifest or an index, as far as the verifier reads them. */
export interface ManifestJson {
  mediaType?: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Manifest {
  /** The digest of the bytes received, computed here. */
  digest: string;
  mediaType: string;
  bytes: Buffer;
  json: ManifestJson;
}

/** The content was larger than the client reads. */
export class TooLargeError extends Error {
  constructor(what: string, max: number) {
    super(`${what} is larger than ${max} bytes`);
    this.name = "TooLargeError";
  }
}

export interface RegistryClientDeps {
  fetch: RegistryFetch;
  registryConfig: (signal: AbortSignal) => Promise<RegistryConfig>;
  /** The host's addresses, as dockerd looks them up to match InsecureRegistryCIDRs. */
  lookup: (host: string) => Promise<string[]>;
  scrubber: { add(secret: string): void };
  timeoutMs?: number;
}

export interface Repository {
  /** The registry as the reference writes it (`ghcr.io`, `localhost:5000`, `docker.io`). */
  registry: string;
  /** The repository path (`acme/app`, `library/redis`). */
  path: string;
  auth?: RegistryAuth;
}

const DIGEST = /^(sha256|sha384|sha512):([a-f0-9]+)$/;

/** `digest`'s algorithm and hex, or undefined for a digest the client cannot check. */
export function splitDigest(digest: string): { algorithm: string; hex: string } | undefined {
  const m = DIGEST.exec(digest);
  return m ? { algorithm: m[1]!, hex: m[2]! } : undefined;
}

export function digestOf(bytes: Buffer, algorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/**
 * dockerd's isSecureIndex: the registry's own IndexConfigs entry first (Docker
 * Hub's, under `docker.io`, is always there and secure), then the host's
 * addresses against the insecure ranges.
 */
async function isInsecure(registry: string, host: string, deps: RegistryClientDeps, signal: AbortSignal): Promise<boolean> {
  const config = await deps.registryConfig(signal);
  const own = config.indexConfigs[isDockerHub(registry) ? DOCKER_HUB : registry];
  if (own) return !own.secure;
  if (isDockerHub(registry)) return false;
  const bare = host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
  let addresses: string[];
  try {
    addresses = isIP(bare) ? [bare] : await deps.lookup(bare);
  } catch {
    // dockerd: a name it cannot look up is taken as secure; the request then says why it fails.
    return false;
  }
  const ranges = new BlockList();
  for (const cidr of config.insecureRegistryCIDRs) {
    const [address, bits] = cidr.split("/");
    const family = isIP(address ?? "");
    if (family && bits !== undefined) ranges.addSubnet(address!, Number(bits), family === 4 ? "ipv4" : "ipv6");
  }
  return addresses.some((a) => {
    const family = isIP(a);
    return family !== 0 && ranges.check(a, family === 4 ? "ipv4" : "ipv6");
  });
}

/** The registry's error document in Docker's words: `denied: requested access to the resource is denied`. */
function registryWordsOf(text: string): string | undefined {
  try {
    const doc = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const words = (doc.errors ?? []).map((e) => [e.code?.toLowerCase().replace(/_/g, " "), e.message].filter(Boolean).join(": ")).filter(Boolean);
    if (words.length) return words.join("; ");
  } catch {
    // Not the registry's JSON (a proxy's page, a token server's text): its first line, as it is.
  }
  const line = text.trim().split("\n", 1)[0]?.trim();
  return line ? line.slice(0, 300) : undefined;
}

function isNetworkFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && (/^E[A-Z]+$/.test(code) || TLS_CODE.test(code) || code === "ERR_PROXY_TUNNEL" || code.startsWith("UND_ERR"));
}

/**
 * The answer's body, at most `max` bytes. A body that stops coming (the
 * connection drops, the request's time-out passes mid-body) is the registry
 * being unreachable, as a pull's stalled download is.
 */
async function readBounded(res: Response, max: number, what: string, signal: AbortSignal): Promise<Buffer> {
  const length = Number(res.headers.get("content-length") ?? NaN);
  if (length > max) {
    await res.body?.cancel();
    throw new TooLargeError(what, max);
  }
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      total += chunk.byteLength;
      if (total > max) {
        await res.body.cancel().catch(() => undefined);
        throw new TooLargeError(what, max);
      }
      chunks.push(Buffer.from(chunk));
    }
  } catch (err) {
    if (err instanceof TooLargeError) throw err;
    if (signal.aborted) throw signal.reason;
    throw new AgentError("registry_unreachable", `reading ${what}: the registry stopped sending it (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  return Buffer.concat(chunks);
}

export class RegistryClient {
  private readonly deps: RegistryClientDeps;
  private readonly repo: Repository;
  /** The host requests go to: registry-1.docker.io for Docker Hub's names. */
  readonly host: string;
  private base: Promise<{ origin: string; insecureTls: boolean; fallback?: string }> | undefined;
  private authorization: string | undefined;
  private readonly timeoutMs: number;

  constructor(deps: RegistryClientDeps, repo: Repository) {
    this.deps = deps;
    this.repo = repo;
    this.host = requestHost(repo.registry);
    this.timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (repo.auth) {
      deps.scrubber.add(repo.auth.password);
    }
  }

  /** GET a manifest by tag or digest; a 404 is the registry's refusal (image_not_found). A digest is checked against the bytes. */
  async manifest(reference: string, signal: AbortSignal): Promise<Manifest> {
    return this.manifestFrom(await this.request("GET", `manifests/${reference}`, MANIFEST_ACCEPT, signal, []), reference, signal);
  }

  /** The same, or undefined where the registry has none (404): a signature tag that was never pushed. */
  async findManifest(reference: string, signal: AbortSignal): Promise<Manifest | undefined> {
    const res = await this.request("GET", `manifests/${reference}`, MANIFEST_ACCEPT, signal, [404]);
    if (res.status !== 404) return this.manifestFrom(res, reference, signal);
    await res.body?.cancel();
    return undefined;
  }

  private async manifestFrom(res: Response, reference: string, signal: AbortSignal): Promise<Manifest> {
    const bytes = await readBounded(res, MAX_MANIFEST_BYTES, `the manifest ${this.repo.path}:${reference}`, signal);
    const wanted = splitDigest(reference);
    const digest = digestOf(bytes, wanted?.algorithm);
    if (wanted && digest !== reference) {
      throw new AgentError("digest_mismatch", `the registry answered ${this.repo.path}@${reference} with a manifest whose digest is ${digest}`);
    }
    const announced = res.headers.get("docker-content-digest");
    if (!wanted && announced && splitDigest(announced)?.algorithm === "sha256" && announced !== digest) {
      throw new AgentError("digest_mismatch", `the registry announced ${announced} for ${this.repo.path}:${reference} but sent a manifest whose digest is ${digest}`);
    }
    let json: ManifestJson;
    try {
      json = JSON.parse(bytes.toString("utf8")) as ManifestJson;
    } catch {
      throw new AgentError("image_unsupported", `the manifest of ${this.repo.path}:${reference} is not JSON`);
    }
    const mediaType = json.mediaType ?? res.headers.get("content-type")?.split(";")[0]?.trim() ?? "";
    return { digest, mediaType, bytes, json };
  }

  /** GET a blob, bounded to `max` bytes and checked against its digest. */
  async blob(digest: string, max: number, signal: AbortSignal): Promise<Buffer> {
    const wanted = splitDigest(digest);
    if (!wanted) throw new AgentError("image_unsupported", `${digest} is no digest the agent can check`);
    const res = await this.request("GET", `blobs/${digest}`, "*/*", signal, []);
    const bytes = await readBounded(res, max, `the blob ${digest}`, signal);
    const got = digestOf(bytes, wanted.algorithm);
    if (got !== digest) throw new AgentError("digest_mismatch", `the registry answered the blob ${this.repo.path}@${digest} with content whose digest is ${got}`);
    return bytes;
  }

  /**
   * The referrers of `digest` (OCI 1.1), every page; undefined where the registry
   * has no referrers API (404: the caller falls back to the `<alg>-<hex>` tag).
   */
  async referrers(digest: string, signal: AbortSignal): Promise<Descriptor[] | undefined> {
    const out: Descriptor[] = [];
    let next: string | undefined = `referrers/${digest}`;
    for (let page = 0; next && page < MAX_REFERRER_PAGES; page++) {
      const res = await this.request("GET", next, MEDIA.ociIndex, signal, [404]);
      if (res.status === 404) {
        await res.body?.cancel();
        if (page === 0) return undefined;
        break;
      }
      const bytes = await readBounded(res, MAX_MANIFEST_BYTES, `the referrers of ${digest}`, signal);
      try {
        out.push(...((JSON.parse(bytes.toString("utf8")) as ManifestJson).manifests ?? []));
      } catch {
        throw new AgentError("image_unsupported", `the registry's referrers list for ${this.repo.path}@${digest} is not JSON`);
      }
      next = nextLink(res.headers.get("link"), this.host, next.startsWith("/") ? next : `/v2/${this.repo.path}/${next}`);
    }
    return out;
  }

  private async origin(signal: AbortSignal): Promise<{ origin: string; insecureTls: boolean; fallback?: string }> {
    this.base ??= isInsecure(this.repo.registry, this.host, this.deps, signal).then((insecure) =>
      insecure ? { origin: `https://${this.host}`, insecureTls: true, fallback: `http://${this.host}` } : { origin: `https://${this.host}`, insecureTls: false },
    );
    return this.base;
  }

  /** One request to `/v2/<path>/<rest>` (or an absolute path from a Link header), authenticated as the registry asks. */
  private async request(method: "GET" | "HEAD", rest: string, accept: string, signal: AbortSignal, expected: number[]): Promise<Response> {
    let challenged = false;
    for (;;) {
      const url = await this.url(rest, signal);
      const headers: Record<string, string> = { Accept: accept, ...(this.authorization ? { Authorization: this.authorization } : {}) };
      const res = await this.followRedirects(url, await this.send(url, method, headers, signal), method, headers, signal);
      const challenge = res.status === 401 && !challenged ? parseChallenge(res.headers.get("www-authenticate")) : undefined;
      if (challenge && this.canAnswer(challenge)) {
        challenged = true;
        await res.body?.cancel();
        await this.answer(challenge, signal);
        continue;
      }
      if (res.ok || expected.includes(res.status)) return res;
      return this.fail(method, url, res, signal);
    }
  }

  /**
   * Follows a registry's redirects, as Docker does: Docker Hub, GHCR and ECR send
   * blob downloads to a CDN or a presigned S3 URL (307). The credential goes to
   * the registry's own origin only: a presigned URL carries its own, and refuses a
   * second one.
   */
  private async followRedirects(from: URL, first: Response, method: "GET" | "HEAD", headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    let res = first;
    let url = from;
    for (let hop = 0; REDIRECTS.has(res.status); hop++) {
      const location = res.headers.get("location");
      if (!location || hop >= MAX_REDIRECTS) return res;
      await res.body?.cancel();
      const next = new URL(location, url);
      // Never from HTTPS down to plain HTTP.
      if (next.protocol !== "https:" && !(next.protocol === "http:" && url.protocol === "http:")) {
        throw new AgentError("registry_unreachable", `${method} ${url.origin}${url.pathname}: redirected to ${next.protocol}// (only HTTPS is followed)`);
      }
      const forwarded = next.origin === from.origin ? headers : Object.fromEntries(Object.entries(headers).filter(([k]) => k !== "Authorization"));
      res = await this.once(next, method, forwarded, signal, false);
      url = next;
    }
    return res;
  }

  private async url(rest: string, signal: AbortSignal): Promise<URL> {
    const { origin } = await this.origin(signal);
    // Joined as text: `new URL("//other.host/…", origin)` would leave the registry's host.
    return rest.startsWith("/") ? new URL(`${origin}${rest}`) : new URL(`${origin}/v2/${this.repo.path}/${rest}`);
  }

  /** Sends, bounded in time; an insecure registry whose HTTPS does not answer is asked over plain HTTP from then on (dockerd's fallback). */
  private async send(url: URL, method: "GET" | "HEAD", headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const base = await this.origin(signal);
    try {
      return await this.once(url, method, headers, signal, base.insecureTls);
    } catch (err) {
      if (!base.fallback || !(err instanceof AgentError) || err.code !== "registry_unreachable") throw err;
      const plain = base.fallback;
      this.base = Promise.resolve({ origin: plain, insecureTls: false });
      return this.once(new URL(url.pathname + url.search, plain), method, headers, signal, false);
    }
  }

  private async once(url: URL, method: "GET" | "HEAD", headers: Record<string, string>, signal: AbortSignal, insecureTls: boolean): Promise<Response> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      return await this.deps.fetch(url, { method, headers, signal: AbortSignal.any([signal, timeout]), ...(insecureTls ? { insecureTls } : {}) });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      const why = timeout.aborted ? `no answer within ${Math.round(this.timeoutMs / 1000)}s` : err instanceof Error ? err.message : String(err);
      if (timeout.aborted || isNetworkFailure(err)) throw new AgentError("registry_unreachable", `${method} ${url.href}: ${why}`, { cause: err });
      throw err;
    }
  }

  /** Whether answering the challenge sends something new: Basic needs a credential not already sent. */
  private canAnswer(challenge: Challenge): boolean {
    if (challenge.scheme === "bearer") return true;
    const auth = this.repo.auth;
    return auth !== undefined && basicAuthorization(auth.username, auth.password) !== this.authorization;
  }

  /** Answers a 401's challenge: Basic with the credential, Bearer with a token from the realm. */
  private async answer(challenge: Challenge, signal: AbortSignal): Promise<void> {
    const auth = this.repo.auth;
    if (challenge.scheme === "basic") {
      if (auth) this.authorization = basicAuthorization(auth.username, auth.password);
      return;
    }
    const realm = realmOf(challenge.realm);
    if (challenge.service) realm.searchParams.set("service", challenge.service);
    realm.searchParams.set("scope", `repository:${this.repo.path}:pull`);
    const headers: Record<string, string> = { Accept: "application/json", ...(auth ? { Authorization: basicAuthorization(auth.username, auth.password) } : {}) };
    const res = await this.once(realm, "GET", headers, signal, false);
    // The token server is where the credential is checked: its refusal is a login's (GHCR answers a wrong PAT there with 403 denied).
    if (!res.ok) return this.fail("GET", realm, res, signal, { login: true });
    const bytes = await readBounded(res, MAX_TOKEN_BYTES, "the token server's answer", signal);
    let token: string | undefined;
    try {
      const doc = JSON.parse(bytes.toString("utf8")) as { token?: string; access_token?: string };
      token = doc.token ?? doc.access_token;
    } catch {
      token = undefined;
    }
    if (!token) throw new AgentError("registry_unreachable", `the token server ${realm.origin} answered without a token`);
    this.deps.scrubber.add(token);
    this.authorization = `Bearer ${token}`;
  }

  /** A refusal, classified as a pull's would be (errors/classify.ts): the registry's words first, then its status. */
  private async fail(method: string, url: URL, res: Response, signal: AbortSignal, opts: { login?: boolean } = {}): Promise<never> {
    const text = signal.aborted ? "" : (await readBounded(res, MAX_ERROR_BYTES, "the error", signal).catch(() => Buffer.alloc(0))).toString("utf8");
    const words = registryWordsOf(text);
    const status = `${res.status}${res.statusText ? ` ${res.statusText}` : ""}`;
    // A status the rules do not know (a 400, a 3xx the transport does not follow): the registry did not serve the image.
    const code: ErrorCode =
      classifyDockerMessage(`${words ?? "the registry answered"}: ${status}`, { authenticated: this.repo.auth !== undefined, statusCode: res.status, ...(opts.login ? { login: true } : {}) }) ??
      "registry_unreachable";
    const where = new URL(url.href);
    where.search = "";
    throw new AgentError(code, `${method} ${where.href}: ${status}${words ? `: ${words}` : ""}`, words ? { registryMessage: words } : {});
  }
}

/** A Bearer challenge's realm: an http(s) URL, as dockerd accepts, or the registry did not answer as one. */
function realmOf(text: string): URL {
  let realm: URL | undefined;
  try {
    realm = new URL(text);
  } catch {
    realm = undefined;
  }
  if (realm?.protocol !== "https:" && realm?.protocol !== "http:") {
    throw new AgentError("registry_unreachable", `the registry's token realm ${JSON.stringify(text)} is not an http(s) URL`);
  }
  return realm;
}

/**
 * The path of a `Link: <…>; rel="next"` header's target (distribution spec: pagination),
 * resolved against the page it came with. A target on another host — or one that does not
 * parse — ends the paging: the registry's header must not take the credential elsewhere.
 */
function nextLink(header: string | null, host: string, current: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(",")) {
    const m = /<([^>]+)>\s*;.*\brel="?next"?/i.exec(part);
    if (!m) continue;
    const base = `https://${host}`;
    let target: URL;
    try {
      target = new URL(m[1]!, base + current);
    } catch {
      return undefined;
    }
    return target.host === host ? target.pathname + target.search : undefined;
  }
  return undefined;
}
