// The agent's view of the Docker Engine API, and its dockerode implementation.
// Credentials travel only in the POST /auth body and the X-Registry-Auth header
// over the socket: nothing is written to ~/.docker/config.json.
import Docker from "dockerode";
import { raceAbort } from "../abort.ts";
import type { RegistryAuth } from "../credentials/types.ts";
import { encodeRegistryAuth } from "./auth-header.ts";

export interface ImageInfo {
  id: string;
  repoDigests: string[];
}

/** An image as GET /images/json lists it. */
export interface ListedImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Bytes (the image's size with the layers it shares). */
  size: number;
}

/** A container (running or stopped) and the image it was created from. */
export interface ListedContainer {
  id: string;
  imageId: string;
}

export interface PullRequest {
  fromImage: string;
  /** A tag, or a digest (`sha256:…`). */
  tag: string;
  auth?: RegistryAuth;
  signal: AbortSignal;
}

/** An error the daemon answered with over HTTP, before any stream. */
export class DockerHttpError extends Error {
  readonly statusCode: number;

  constructor(statusCode: number, message: string) {
    super(message);
    this.name = "DockerHttpError";
    this.statusCode = statusCode;
  }
}


/** GET /info's RegistryConfig: which registries dockerd reaches over plain HTTP (docs/reference.md §2a). */
export interface RegistryConfig {
  /** Per registry host (`host:port` where one is given), whether dockerd verifies its TLS. */
  indexConfigs: Record<string, { secure: boolean }>;
  /** Registries whose addresses fall in these ranges are insecure too (dockerd's default: 127.0.0.0/8, ::1/128). */
  insecureRegistryCIDRs: string[];
}

export interface DockerPort {
  ping(signal: AbortSignal): Promise<void>;
  /** GET /info's DockerRootDir: where the engine keeps images. */
  dataRoot(signal: AbortSignal): Promise<string>;
  registryConfig(signal: AbortSignal): Promise<RegistryConfig>;
  login(auth: RegistryAuth, signal: AbortSignal): Promise<void>;
  /** Starts POST /images/create; resolves with the progress stream. */
  pull(req: PullRequest): Promise<NodeJS.ReadableStream>;
  /** undefined when the daemon has no such image. */
  inspectImage(ref: string, signal?: AbortSignal): Promise<ImageInfo | undefined>;
  /** POST /images/{source}/tag: gives the image `source` names the reference repo:tag too. */
  tagImage(source: string, repo: string, tag: string, signal: AbortSignal): Promise<void>;
  /**
   * GET /distribution/{ref}/json with the pull's X-Registry-Auth: the engine asks the
   * registry for the image's manifest, through its own TLS, mirror and insecure-registry
   * settings. Resolves when the registry answered; rejects with a DockerHttpError carrying
   * the engine's line, which keeps the registry's words where a pull may lose them.
   */
  distributionInspect(ref: string, auth: RegistryAuth | undefined, signal: AbortSignal): Promise<void>;
  listImages(signal: AbortSignal): Promise<ListedImage[]>;
  /** Every container, stopped ones too. */
  listContainers(signal: AbortSignal): Promise<ListedContainer[]>;
  /** DELETE /images/{ref} (no force): removes one reference; the image goes with its last one. Returns the image IDs deleted. */
  removeImage(ref: string, signal: AbortSignal): Promise<{ deleted: string[] }>;
}

interface ModemError {
  statusCode?: number;
  json?: { message?: string } | string | null;
  reason?: string;
  message?: string;
  code?: string;
}

function rethrow(err: unknown): never {
  const e = err as ModemError;
  if (typeof e?.statusCode === "number") {
    // For streamed endpoints docker-modem leaves `json` empty and folds the daemon's
    // message into its own: "(HTTP code 500) server error - <daemon's message> ".
    const folded = /^\(HTTP code \d+\) [^-]*? - ([\s\S]*)$/.exec(e.message ?? "")?.[1];
    const msg = (typeof e.json === "object" && e.json?.message) || (typeof e.json === "string" && e.json) || folded || e.message || e.reason || "";
    throw new DockerHttpError(e.statusCode, String(msg).trim());
  }
  throw err;
}

/** GET /distribution/{ref}/json (dockerode has no call for it): resolves on 200, rejects with the engine's line. */
async function distributionInspect(docker: Docker, ref: string, auth: RegistryAuth | undefined, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    docker.modem.dial(
      {
        path: `/distribution/${ref}/json`,
        method: "GET",
        ...(auth ? { authconfig: { base64: encodeRegistryAuth(auth) } } : {}),
        abortSignal: signal,
        statusCodes: { 200: true, 401: "unauthorized", 403: "forbidden", 404: "not found", 429: "too many requests", 500: "server error" },
      },
      (err: unknown) => (err ? reject(err) : resolve()),
    );
  }).catch(rethrow);
}

/** GET /images/{ref}/json: undefined when the daemon has no such image. */
async function inspectImage(docker: Docker, ref: string, signal: AbortSignal | undefined): Promise<ImageInfo | undefined> {
  try {
    const inspected = docker.getImage(ref).inspect();
    const info = signal ? await raceAbort(inspected, signal) : await inspected;
    return { id: info.Id, repoDigests: info.RepoDigests ?? [] };
  } catch (err) {
    if ((err as ModemError).statusCode === 404) return undefined;
    return rethrow(err);
  }
}

export function createDockerPort(socketPath: string): DockerPort {
  const docker = new Docker({ socketPath });
  return {
    async ping(signal) {
      await raceAbort(docker.ping(), signal).catch(rethrow);
    },
    async dataRoot(signal) {
      const info = (await raceAbort(docker.info(), signal).catch(rethrow)) as { DockerRootDir?: string };
      return info.DockerRootDir ?? "";
    },
    async registryConfig(signal) {
      const info = (await raceAbort(docker.info(), signal).catch(rethrow)) as {
        RegistryConfig?: { IndexConfigs?: Record<string, { Secure?: boolean }>; InsecureRegistryCIDRs?: string[] };
      };
      const rc = info.RegistryConfig ?? {};
      return {
        indexConfigs: Object.fromEntries(Object.entries(rc.IndexConfigs ?? {}).map(([host, c]) => [host, { secure: c.Secure !== false }])),
        insecureRegistryCIDRs: rc.InsecureRegistryCIDRs ?? [],
      };
    },
    async login(auth, signal) {
      await docker
        .checkAuth({ username: auth.username, password: auth.password, serveraddress: auth.serverAddress, abortSignal: signal })
        .catch(rethrow);
    },
    async pull(req) {
      const opts = { fromImage: req.fromImage, tag: req.tag, abortSignal: req.signal };
      // dockerode sends a given `base64` verbatim, so the padding is ours to control.
      const authconfig = req.auth ? { base64: encodeRegistryAuth(req.auth) } : undefined;
      const stream = authconfig ? await docker.createImage(authconfig, opts).catch(rethrow) : await docker.createImage(opts).catch(rethrow);
      return stream as NodeJS.ReadableStream;
    },
    distributionInspect: (ref, auth, signal) => distributionInspect(docker, ref, auth, signal),
    async listImages(signal) {
      const images = await raceAbort(docker.listImages({ all: false }), signal).catch(rethrow);
      return images.map((i) => ({ id: i.Id, repoTags: i.RepoTags ?? [], repoDigests: i.RepoDigests ?? [], size: i.Size }));
    },
    async listContainers(signal) {
      const containers = await raceAbort(docker.listContainers({ all: true }), signal).catch(rethrow);
      return containers.map((c) => ({ id: c.Id, imageId: c.ImageID }));
    },
    async removeImage(ref, signal) {
      const out = (await raceAbort(docker.getImage(ref).remove({ force: false, noprune: false }), signal).catch(rethrow)) as { Deleted?: string; Untagged?: string }[];
      return { deleted: out.flatMap((o) => (o.Deleted ? [o.Deleted] : [])) };
    },
    async tagImage(source, repo, tag, signal) {
      await raceAbort(docker.getImage(source).tag({ repo, tag }), signal).catch(rethrow);
    },
    inspectImage: (ref, signal) => inspectImage(docker, ref, signal),
  };
}
