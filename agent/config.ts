// docs/reference.md §4: configuration. A JSON file (unknown keys refused), every key
// overridable by SLOTHBOX_<UPPER_SNAKE_KEY>; the environment wins; values from
// either are validated alike, and an error names the key (and the variable).
import * as z from "zod";
import { jsonSyntaxMessage } from "./errors/json-syntax.ts";

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

const int = (min: number, max: number) => z.number().int().min(min).max(max);

const listen = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/, "must be host:port, e.g. 127.0.0.1:7457");
/** Loopback hosts: the only ones plain http may go to (events carry the control plane's bearer token). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), "must be an http(s) URL")
  .refine((u) => u.startsWith("https://") || isLoopbackHost(new URL(u).hostname), "must be https:// (plain http only to a loopback address): events carry the control plane's bearer token");
const absolutePath = z.string().startsWith("/", "must be an absolute path");

const schema = z.strictObject({
  boxId: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, "must be 1-128 letters, digits, '_', '.' or '-'").optional(),
  orgId: z.string().min(1).optional(),
  controlPlaneUrl: httpUrl.optional(),
  controlPlaneTokenFile: absolutePath.default("/etc/slothbox/control-plane-token"),
  listen: listen.default("127.0.0.1:7457"),
  apiTokenFile: absolutePath.default("/etc/slothbox/api-token"),
  /** docs/reference.md §4: the API's certificate chain and key (PEM); required off loopback (apiTlsProblem). */
  tlsCertFile: absolutePath.optional(),
  tlsKeyFile: absolutePath.optional(),
  dockerSocket: z.string().min(1).optional(),
  ssmParameterPrefix: z
    .string()
    .regex(/^\/([A-Za-z0-9_.-]+\/)+$/, "must start and end with '/' (e.g. /slothbox/registry-credentials/)")
    .default("/slothbox/registry-credentials/"),
  stateDir: absolutePath.default("/var/lib/slothbox"),
  // Measured (npm run bench:concurrency, docs/benchmarks.md): with registries across a network (20 ms a request), 6 is the fastest,
  // or within 1 % of it, for 6 and 20 images, small and large, on both image stores; with none, 4 and 6 are within each other's noise.
  pullConcurrency: int(1, 32).default(6),
  pullTimeoutSeconds: int(1, 86_400).default(1800),
  pullInactivityTimeoutSeconds: int(1, 3600).default(60),
  pullRetries: int(0, 20).default(3),
  logLevel: z.enum(LOG_LEVELS).default("info"),
  awsRegion: z.string().regex(/^[a-z]{2}(-[a-z0-9]+)+-\d+$/, "must be an AWS region such as us-east-1").optional(),
  credentialCacheSeconds: int(0, 43_200).default(300),
  awsMaxWaitSeconds: int(1, 86_400).default(600),
  /** docs/reference.md §8 image cleanup, as the ECS agent's (ECS_IMAGE_CLEANUP_INTERVAL, ECS_IMAGE_MINIMUM_CLEANUP_AGE). */
  imageCleanup: z.boolean().default(true),
  imageCleanupKeepBakes: int(0, 100).default(1),
  imageCleanupIntervalSeconds: int(1, 7 * 86_400).default(3600),
  imageCleanupMinAgeSeconds: int(0, 365 * 86_400).default(3600),
  /** Free space a bake leaves on Docker's data root, at least: the larger of the two (docs/reference.md §4). */
  diskReserveBytes: int(0, Number.MAX_SAFE_INTEGER).default(2_000_000_000),
  diskReservePercent: int(0, 90).default(5),
  /** How throttled AWS calls retry (docs/fleet.md): spread (default) or the SDK's own modes. */
  awsRetryStrategy: z.enum(["spread", "adaptive", "standard"]).default("spread"),
});

type Parsed = z.infer<typeof schema>;

export interface Config extends Omit<Parsed, "dockerSocket"> {
  /** Filesystem path of the Docker socket (from dockerSocket, DOCKER_HOST or the default). */
  dockerSocket: string;
}

const DEFAULT_CONFIG_FILE = "/etc/slothbox/agent.json";

export class ConfigError extends Error {
  readonly key: string;
  readonly variable: string | undefined;

  constructor(key: string, message: string, variable?: string) {
    super(message);
    this.name = "ConfigError";
    this.key = key;
    this.variable = variable;
  }
}

const KEYS = Object.keys(schema.shape) as (keyof Parsed)[];
const NUMERIC = new Set<string>([
  "pullConcurrency",
  "pullTimeoutSeconds",
  "pullInactivityTimeoutSeconds",
  "pullRetries",
  "credentialCacheSeconds",
  "awsMaxWaitSeconds",
  "imageCleanupKeepBakes",
  "imageCleanupIntervalSeconds",
  "imageCleanupMinAgeSeconds",
  "diskReserveBytes",
  "diskReservePercent",
]);
const BOOLEAN = new Set<string>(["imageCleanup"]);

/** `pullConcurrency` → `SLOTHBOX_PULL_CONCURRENCY`. */
export function envName(key: string): string {
  return "SLOTHBOX_" + key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

export interface LoadOptions {
  /** `--config`: a missing file is then an error. */
  file?: string;
  env: Record<string, string | undefined>;
  readFile: (path: string) => string | undefined;
}

function socketPath(value: string, key: string, variable?: string): string {
  if (value.startsWith("unix://")) return value.slice("unix://".length);
  if (value.startsWith("/")) return value;
  throw new ConfigError(key, `${key}: must be a socket path or a unix:// URL, got "${value}"`, variable);
}

export function loadConfig(opts: LoadOptions): Config {
  const path = opts.file ?? DEFAULT_CONFIG_FILE;
  const text = opts.readFile(path);
  if (text === undefined && opts.file !== undefined) throw new ConfigError("config", `config file ${path} does not exist or cannot be read`);
  let fromFile: Record<string, unknown> = {};
  if (text !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConfigError("config", `config file ${path} is not valid JSON: ${jsonSyntaxMessage(err)}`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError("config", `config file ${path} must hold a JSON object`);
    }
    fromFile = parsed as Record<string, unknown>;
    for (const k of Object.keys(fromFile)) {
      if (!(KEYS as string[]).includes(k)) throw new ConfigError(k, `${k}: unknown configuration key in ${path}`);
    }
  }
  const merged: Record<string, unknown> = { ...fromFile };
  const source = new Map<string, string>();
  for (const key of KEYS) {
    const variable = envName(key);
    const raw = opts.env[variable];
    if (raw === undefined || raw === "") continue;
    source.set(key, variable);
    if (NUMERIC.has(key)) {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(key, `${key}: must be a whole number, got "${raw}" (from ${variable})`, variable);
      merged[key] = Number(raw.trim());
    } else if (BOOLEAN.has(key)) {
      const v = raw.trim().toLowerCase();
      if (v !== "true" && v !== "false") throw new ConfigError(key, `${key}: must be true or false, got "${raw}" (from ${variable})`, variable);
      merged[key] = v === "true";
    } else merged[key] = raw;
  }
  const result = schema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0] ?? "config");
    const variable = source.get(key);
    throw new ConfigError(key, `${key}: ${issue.message}${variable ? ` (from ${variable})` : ` (in ${path})`}`, variable);
  }
  const c = result.data;
  const dockerSocket =
    c.dockerSocket !== undefined
      ? socketPath(c.dockerSocket, "dockerSocket", source.get("dockerSocket"))
      : opts.env["DOCKER_HOST"]
        ? socketPath(opts.env["DOCKER_HOST"], "dockerSocket", "DOCKER_HOST")
        : "/var/run/docker.sock";
  return Object.freeze({ ...c, dockerSocket });
}

/**
 * What reporting to the control plane needs beyond its token file, checked when
 * a command reports (the daemon; `bake` without --no-report), not at load: a
 * baked image's config names the control plane, while each box's boxId and
 * token arrive at first boot.
 */
export function reportingProblem(c: Pick<Config, "controlPlaneUrl" | "boxId">): ConfigError | undefined {
  if (c.controlPlaneUrl === undefined || c.boxId !== undefined) return undefined;
  return new ConfigError("boxId", `boxId: required to report to ${c.controlPlaneUrl} (events are posted under /v1/boxes/<boxId>/); set ${envName("boxId")} or pass --no-report`);
}

/**
 * docs/reference.md §4, checked when the daemon starts (only it listens): off loopback the API
 * serves only TLS, so both files are required there; anywhere, one without the
 * other is an error.
 */
export function apiTlsProblem(c: Pick<Config, "listen" | "tlsCertFile" | "tlsKeyFile">): ConfigError | undefined {
  if (c.tlsCertFile !== undefined && c.tlsKeyFile === undefined) {
    return new ConfigError("tlsKeyFile", `tlsKeyFile: required with tlsCertFile (the certificate's private key, PEM); set ${envName("tlsKeyFile")}`);
  }
  if (c.tlsKeyFile !== undefined && c.tlsCertFile === undefined) {
    return new ConfigError("tlsCertFile", `tlsCertFile: required with tlsKeyFile (the certificate chain, PEM); set ${envName("tlsCertFile")}`);
  }
  const host = c.listen.slice(0, c.listen.lastIndexOf(":"));
  if (c.tlsCertFile === undefined && !isLoopbackHost(host)) {
    return new ConfigError(
      "tlsCertFile",
      `tlsCertFile: required because listen (${c.listen}) is not a loopback address: the API then serves only TLS (bearer tokens and bake specs cross the network); set tlsCertFile and tlsKeyFile (PEM), or listen on 127.0.0.1`,
    );
  }
  return undefined;
}
