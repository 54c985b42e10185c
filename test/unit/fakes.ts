// Plain fakes of the agent's ports for unit tests of the core (the bake, the
// logins, the resolver, the daemon's runner): a Docker engine that answers as
// dockerd does (an HTTP error before the stream, or a progress stream), AWS
// calls, and a clock whose sleeps pass at once. Each records what it was asked,
// can be told to fail or to hang until the caller's signal aborts, and honours
// that signal as the real ports do. Not part of the agent's bundle.
import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import type { Clock } from "../../agent/clock.ts";
import type { AwsPorts, EcrToken, ParameterValue, RegistryAuth } from "../../agent/credentials/types.ts";
import { DockerHttpError, type DockerPort, type ImageInfo, type ListedContainer, type ListedImage, type PullRequest, type RegistryConfig } from "../../agent/docker/port.ts";
import type { EcrHost } from "../../agent/spec/registry.ts";

/** Resolves after `ms` of real time, or rejects with the signal's reason. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
}

/** Never settles on its own; rejects when the signal aborts. */
export function hangUntil(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

export function fakeClock(start = Date.now()): Clock & { t: number } {
  const c = {
    t: start,
    now: () => c.t,
    sleep: async (ms: number, signal?: AbortSignal) => {
      if (signal?.aborted) throw signal.reason;
      c.t += ms;
      // A turn of the event loop, not a microtask: a loop that waits on the clock must not starve real I/O and timers.
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
  };
  return c;
}

const digestOf = (s: string) => "sha256:" + createHash("sha256").update(s).digest("hex");

export type PullPlan =
  | { kind: "ok"; afterMs?: number }
  | { kind: "http"; status: number; message: string }
  | { kind: "stream-error"; message: string }
  | { kind: "hang" }
  /** The layer waits for one of the engine's download slots (`Waiting`), silent for `afterMs`, then the pull completes. */
  | { kind: "queued"; afterMs: number };

/** dockerd as the agent sees it through the Engine API. */
export class FakeDocker implements DockerPort {
  readonly log: string[] = [];
  readonly logins: RegistryAuth[] = [];
  /** The credential of each pull, in order (undefined: anonymous). */
  readonly pullAuths: (RegistryAuth | undefined)[] = [];
  /** Pull plans per `fromImage:tag`, used in order; without one a pull succeeds. */
  readonly plans = new Map<string, PullPlan[]>();
  private readonly images = new Map<string, ImageInfo>();
  ping: (signal: AbortSignal) => Promise<void> = async () => undefined;
  dataRoot: (signal: AbortSignal) => Promise<string> = async () => "/var/lib/docker";
  /** dockerd's defaults: no registry listed, loopback insecure. */
  registryConfig: (signal: AbortSignal) => Promise<RegistryConfig> = async () => ({ indexConfigs: {}, insecureRegistryCIDRs: ["127.0.0.0/8", "::1/128"] });
  loginPlan: (auth: RegistryAuth, signal: AbortSignal) => Promise<void> = async () => undefined;
  inspectPlan: (ref: string, signal?: AbortSignal) => Promise<void> = async () => undefined;

  plan(image: string, ...plans: PullPlan[]): this {
    this.plans.set(image, plans);
    return this;
  }

  /** An image Docker already has, under `name@digest` (and `name:tag` when given). */
  has(name: string, digest: string, tag?: string): this {
    const info = { id: digestOf("config " + name + digest), repoDigests: [`${name}@${digest}`] };
    this.images.set(`${name}@${digest}`, info);
    if (tag) this.images.set(`${name}:${tag}`, info);
    return this;
  }

  pulls(): string[] {
    return this.log.filter((l) => l.startsWith("pull ")).map((l) => l.slice(5));
  }

  async login(auth: RegistryAuth, signal: AbortSignal): Promise<void> {
    this.log.push(`login ${auth.serverAddress}`);
    this.logins.push(auth);
    await this.loginPlan(auth, signal);
  }

  async pull(req: PullRequest): Promise<NodeJS.ReadableStream> {
    const key = `${req.fromImage}:${req.tag}`;
    this.log.push(`pull ${key}${req.auth ? ` as ${req.auth.username}` : ""}`);
    this.pullAuths.push(req.auth);
    const plan = this.plans.get(key)?.shift() ?? { kind: "ok" };
    if (plan.kind === "http") throw new DockerHttpError(plan.status, plan.message);
    const stream = new PassThrough();
    const line = (o: unknown) => stream.write(JSON.stringify(o) + "\n");
    req.signal.addEventListener("abort", () => stream.destroy(new Error("aborted")), { once: true });
    line({ status: `Pulling from ${req.fromImage}`, id: req.tag });
    line({ status: "Pulling fs layer", progressDetail: {}, id: "aaaaaaaaaaaa" });
    if (plan.kind === "hang") return stream;
    if (plan.kind === "queued") line({ status: "Waiting", progressDetail: {}, id: "aaaaaaaaaaaa" });
    if (plan.kind === "stream-error") {
      line({ errorDetail: { message: plan.message }, error: plan.message });
      stream.end();
      return stream;
    }
    void delay(plan.afterMs ?? 0, req.signal).then(
      () => {
        const digest = req.tag.startsWith("sha256:") ? req.tag : digestOf(key);
        const info = { id: digestOf("config " + key), repoDigests: [`${req.fromImage}@${digest}`] };
        this.images.set(`${req.fromImage}@${digest}`, info);
        this.images.set(key, info);
        line({ status: "Pull complete", progressDetail: {}, id: "aaaaaaaaaaaa" });
        line({ status: `Digest: ${digest}` });
        line({ status: `Status: Downloaded newer image for ${key}` });
        stream.end();
      },
      () => undefined,
    );
    return stream;
  }

  /** What GET /distribution answers: the registry's words, per image; undefined: it answers 200. */
  readonly distribution = new Map<string, DockerHttpError>();

  /** Called before GET /distribution answers: hang to hang. */
  distributionPlan: (ref: string, signal: AbortSignal) => Promise<void> = async () => undefined;

  async distributionInspect(ref: string, _auth: RegistryAuth | undefined, signal: AbortSignal): Promise<void> {
    this.log.push(`distribution ${ref}`);
    await this.distributionPlan(ref, signal);
    const err = this.distribution.get(ref);
    if (err) throw err;
  }

  async tagImage(source: string, repo: string, tag: string): Promise<void> {
    this.log.push(`tag ${source} ${repo}:${tag}`);
    const info = this.images.get(source);
    if (!info) throw new DockerHttpError(404, `No such image: ${source}`);
    this.images.set(`${repo}:${tag}`, info);
  }

  /** Removes a reference, as `docker rmi` of a tag does when others remain. */
  untag(ref: string): void {
    this.images.delete(ref);
  }

  /** Containers, stopped or running, by the image ID they were made from. */
  readonly containers: ListedContainer[] = [];

  async listImages(): Promise<ListedImage[]> {
    const byId = new Map<string, ListedImage>();
    for (const [ref, info] of this.images) {
      const i = byId.get(info.id) ?? { id: info.id, repoTags: [], repoDigests: [], size: 1000 };
      (ref.includes("@") ? i.repoDigests : i.repoTags).push(ref);
      byId.set(info.id, i);
    }
    return [...byId.values()];
  }

  async listContainers(): Promise<ListedContainer[]> {
    return [...this.containers];
  }

  async removeImage(ref: string): Promise<{ deleted: string[] }> {
    this.log.push(`remove ${ref}`);
    const info = this.images.get(ref);
    if (!info) throw new DockerHttpError(404, `No such image: ${ref}`);
    const refs = [...this.images].filter(([, i]) => i.id === info.id).length;
    if (refs === 1 && this.containers.some((c) => c.imageId === info.id)) {
      throw new DockerHttpError(409, `conflict: unable to remove repository reference "${ref}" (must force) - container is using its referenced image`);
    }
    this.images.delete(ref);
    // As the classic store does: a repository's last tag takes its digest references with it.
    const repo = ref.includes("@") ? undefined : ref.slice(0, ref.lastIndexOf(":"));
    const ofImage = () => [...this.images].filter(([, i]) => i.id === info.id).map(([r]) => r);
    if (repo && !ofImage().some((r) => r.startsWith(`${repo}:`))) for (const r of ofImage()) if (r.startsWith(`${repo}@`)) this.images.delete(r);
    const left = ofImage().length > 0;
    return { deleted: left ? [] : [info.id] };
  }

  async inspectImage(ref: string, signal?: AbortSignal): Promise<ImageInfo | undefined> {
    this.log.push(`inspect ${ref}`);
    await this.inspectPlan(ref, signal);
    return this.images.get(ref);
  }
}

/** An AWS SDK error as the SDK throws it: a name, AWS's message and the HTTP status. */
export function awsError(name: string, message: string, status = 400): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

/** SSM and ECR as the agent's ports see them. */
export class FakeAws implements AwsPorts {
  readonly calls: string[] = [];
  readonly parameters = new Map<string, ParameterValue>();
  ecrPassword = "ecr-password";
  /** Called before each answer: throw to fail, hang to hang. */
  before: (call: string, signal: AbortSignal) => Promise<void> = async () => undefined;

  // Arrow functions: the agent passes these ports around unbound, as the real ones allow.
  getParameter = async (name: string, signal: AbortSignal): Promise<ParameterValue> => {
    this.calls.push(`ssm ${name}`);
    await this.before(`ssm ${name}`, signal);
    const p = this.parameters.get(name);
    if (!p) throw awsError("ParameterNotFound", "");
    return p;
  };

  getEcrToken = async (host: EcrHost, signal: AbortSignal): Promise<EcrToken> => {
    this.calls.push(`ecr ${host.region} ${host.accountId}`);
    await this.before(`ecr ${host.region} ${host.accountId}`, signal);
    return { authorizationToken: Buffer.from(`AWS:${this.ecrPassword}`).toString("base64"), expiresAt: new Date(Date.now() + 12 * 3600_000) };
  };

  checkReachable = async (): Promise<void> => undefined;
  endpointOf = async (target: { service: "ssm" } | { service: "ecr"; host: EcrHost }): Promise<string> =>
    target.service === "ssm" ? "https://ssm.us-east-1.amazonaws.com" : `https://api.ecr.${target.host.region}.amazonaws.com`;
  imdsEndpoint = "http://169.254.169.254";
}
