// The hermetic test stack: its own dockerd, and real registries (distribution)
// under real host names on loopback, each behind a front that answers refusals
// in that registry's own words and takes faults on demand (registry-front.ts).
// The AWS stand-in and the control plane are cheap in-process servers that each
// test starts for itself (aws/stand-in.ts, control-plane.ts), so tests never
// share their faults.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { makeCerts } from "./certs.ts";
import { engineFromEnv, needsHttpOn443, startDockerd, type Dockerd, type Engine, type EngineInfo } from "./dockerd.ts";
import { startHttpsRefuser } from "./https-refuser.ts";
import type { RegistryTarget } from "./images.ts";
import { TOKEN_REFUSALS, type RegistryKind } from "./refusals.ts";
import { startRegistryFront, type RegistryFront } from "./registry-front.ts";
import { buildRegistryImage, startRegistry, type Registry } from "./registry.ts";
import { TOKEN_ISSUER, TokenServer, type ServiceUsers } from "./token-server.ts";

export interface RegistryInfo {
  /** The registry's name as images and credentials write it. */
  host: string;
  /** Loopback address it serves on (port 80; Docker Hub 443). */
  address: string;
  /** Its front: where pushes go. */
  url: string;
  /** Plain HTTP to its front (Docker Hub's too): /__front/ takes faults and counts requests. */
  control: string;
  /** The credential a customer would store: username and secret, in the registry's own form. */
  user?: string;
  password?: string;
  /** How the test helpers push to it (an admin that may push everywhere). */
  push: RegistryTarget;
  /** Bearer-token registries: the token server's name for it (revokeAfterLogin). */
  tokenService?: string;
}

export interface StackInfo {
  dir: string;
  /** The stack's loopback subnet: its addresses are 127.<subnet>.0.x (and .1.x). */
  subnet: number;
  dockerHost: string;
  socketPath: string;
  dockerdPid: number;
  /** The engine under test: SLOTHBOX_TEST_ENGINE, or startStack's `engine`. */
  engine: EngineInfo;
  /** Extra ghcr.io users whose passwords hold awkward characters, one per base64 padding length. */
  awkwardUsers: { user: string; password: string }[];
  registries: {
    ghcr: RegistryInfo;
    ecr: RegistryInfo;
    quay: RegistryInfo;
    stall: RegistryInfo;
    flaky: RegistryInfo;
    dockerhub: RegistryInfo;
    gcr: RegistryInfo;
    pkgdev: RegistryInfo;
    digitalocean: RegistryInfo;
    acr: RegistryInfo;
    gitlab: RegistryInfo;
  };
  /** GCR / Artifact Registry: the service-account key, and the same key base64-encoded. */
  gcpKey: { json: string; base64: string };
  /** A GitLab deploy token of 8 KB (SSM advanced parameters hold up to 8 KB). */
  bigSecret: { user: string; password: string };
  tokenServerUrl: string;
}

export const ECR_ACCOUNT = "123456789012";
export const ECR_HOST = `${ECR_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com`;

/** Last octet of each registry's loopback address; the stack's subnet gives the rest. */
const HOSTS = {
  ghcr: { host: "ghcr.io", octet: 2 },
  ecr: { host: ECR_HOST, octet: 3 },
  quay: { host: "quay.io", octet: 4 },
  stall: { host: "stall.registry.test", octet: 5 },
  flaky: { host: "flaky.registry.test", octet: 6 },
  dockerhub: { host: "registry-1.docker.io", octet: 10 },
  gcr: { host: "gcr.io", octet: 11 },
  pkgdev: { host: "europe-west1-docker.pkg.dev", octet: 13 },
  digitalocean: { host: "registry.digitalocean.com", octet: 14 },
  acr: { host: "acme.azurecr.io", octet: 15 },
  gitlab: { host: "registry.gitlab.com", octet: 16 },
} as const;

type RegistryKey = keyof typeof HOSTS;

/**
 * Stacks on different subnets (127.<subnet>.0.x) run side by side on one machine:
 * the tests, a demo beside them, the engine matrix, another checkout's tests.
 * SLOTHBOX_TEST_SUBNET picks one; otherwise each stack claims the first subnet no
 * live stack holds (a claim is a file naming its process, so a stack killed with
 * -9 leaves a claim the next one takes over).
 */
export function stackSubnet(env: Record<string, string | undefined> = process.env): number | undefined {
  const raw = env["SLOTHBOX_TEST_SUBNET"];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 254) throw new Error(`SLOTHBOX_TEST_SUBNET must be 0-254, got ${raw}`);
  return n;
}

const CLAIMS = "/run/slothbox-dev/subnets";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** Whether the first registry's front and registry addresses are free (a stack that made no claim may hold them). */
async function subnetFree(n: number): Promise<boolean> {
  return (await portFree(80, `127.${n}.0.2`)) && (await portFree(5000, `127.${n}.1.2`));
}

/** Claims a subnet for this process: the one asked for, or the first free one. Returns it and its release. */
async function claimSubnet(wanted: number | undefined): Promise<{ subnet: number; release: () => void }> {
  mkdirSync(CLAIMS, { recursive: true });
  for (const n of wanted === undefined ? Array.from({ length: 255 }, (_, i) => i) : [wanted]) {
    const file = path.join(CLAIMS, String(n));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(file, String(process.pid), { flag: "wx" });
        if (wanted === undefined && !(await subnetFree(n))) {
          rmSync(file, { force: true });
          break;
        }
        return { subnet: n, release: () => rmSync(file, { force: true }) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const holder = Number(readFileSync(file, "utf8"));
        if (holder === process.pid || alive(holder)) break;
        rmSync(file, { force: true });
      }
    }
  }
  throw new Error(wanted === undefined ? "no free loopback subnet for the stack" : `subnet ${wanted} is held by a running stack (${CLAIMS}/${wanted})`);
}

/** dockerd treats docker.io and index.docker.io as Docker Hub and reaches it at registry-1.docker.io. */
const DOCKER_HUB_NAMES = ["registry-1.docker.io", "index.docker.io"];

/** A service-account key as GCP issues it: multi-line, quoted, a PEM key with \\n, ~2.3 KB. */
function gcpServiceAccountKey(): string {
  const pem = "-----BEGIN PRIVATE KEY-----\n" + (randomBytes(1190).toString("base64").match(/.{1,64}/g) ?? []).join("\n") + "\n-----END PRIVATE KEY-----\n";
  return JSON.stringify(
    {
      type: "service_account",
      project_id: "acme-project",
      private_key_id: randomBytes(20).toString("hex"),
      private_key: pem,
      client_email: "slothbox-puller@acme-project.iam.gserviceaccount.com",
      client_id: "1" + randomBytes(10).readBigUInt64BE().toString().slice(0, 20),
      auth_uri: "https://accounts.google.com/o/oauth2/auth",
      token_uri: "https://oauth2.googleapis.com/token",
      auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs",
      client_x509_cert_url: "https://www.googleapis.com/robot/v1/metadata/x509/slothbox-puller%40acme-project.iam.gserviceaccount.com",
      universe_domain: "googleapis.com",
      note: "quotes \" and backslashes \\ and a tab\t survive",
    },
    null,
    2,
  );
}

export interface Stack {
  /** The stack as seen from its first engine. */
  info: StackInfo;
  /** The same registries, AWS-free world, through another of its engines. */
  infoFor(engine: Engine): StackInfo;
  /** Every engine's dockerd, for the leftover check. */
  footprint(): Footprint;
  stop(): Promise<void>;
}

function secret(): string {
  return "sbx-" + randomBytes(18).toString("base64url");
}

/** Environment testcontainers needs with a bridge-less daemon and no Ryuk image. */
export function testcontainersEnv(dockerHost: string): void {
  process.env["DOCKER_HOST"] = dockerHost;
  process.env["TESTCONTAINERS_RYUK_DISABLED"] = "true";
  process.env["TESTCONTAINERS_HOST_OVERRIDE"] = "127.0.0.1";
}

/**
 * One set of registries (with their fronts and token server) and one dockerd per
 * engine, each with its own socket, data root and /etc/hosts naming the same
 * registries: the engine matrix tests every engine against the same registries.
 */
export async function startStack(opts: { dir?: string; subnet?: number; engines?: Engine[] } = {}): Promise<Stack> {
  const dir = opts.dir ?? `/tmp/sbx-${randomBytes(3).toString("hex")}`;
  const claim = await claimSubnet(opts.subnet ?? stackSubnet());
  const subnet = claim.subnet;
  const engines = opts.engines?.length ? opts.engines : [engineFromEnv()];
  const addresses = Object.fromEntries(
    Object.entries(HOSTS).map(([k, v]) => [k, { host: v.host, address: `127.${subnet}.0.${v.octet}` }]),
  ) as Record<RegistryKey, { host: string; address: string }>;
  const hosts = Object.fromEntries(Object.values(addresses).map((a) => [a.host, a.address]));
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    claim.release();
  };
  try {
    mkdirSync(dir, { recursive: true });
    const certs = makeCerts(dir, DOCKER_HUB_NAMES);
    hosts["index.docker.io"] = addresses.dockerhub.address;
    // Docker Hub is on verified TLS: listed as insecure, 28.5's containerd store skips the certificate check.
    const insecureRegistries = Object.keys(hosts).filter((h) => !DOCKER_HUB_NAMES.includes(h));
    const dockerds: Dockerd[] = [];
    cleanups.push(async () => void (await Promise.all(dockerds.map((d) => d.stop()))));
    await Promise.all(
      engines.map(async (engine, i) => {
        const d = await startDockerd({ dir: path.join(dir, `e${i}`), hosts, engine, insecureRegistries, env: { SSL_CERT_FILE: certs.bundleFile } });
        dockerds[i] = d;
      }),
    );
    const dockerd = dockerds[0]!;
    // The registries run as containers on the first engine's daemon.
    testcontainersEnv(dockerd.dockerHost);
    await buildRegistryImage(dir);

    const admin = { user: "slothbox-test-admin", password: secret() };
    const tokens = await new TokenServer({ signingKeyPem: certs.signingKeyPem, signingCertPem: certs.signingCertPem, admin }).start();
    cleanups.push(() => tokens.stop());

    const gcpJson = gcpServiceAccountKey();
    const gcpKey = { json: gcpJson, base64: Buffer.from(gcpJson).toString("base64") };
    const doToken = "dop_v1_" + randomBytes(32).toString("hex");
    // Each registry's credential in the form its users store it (README: registries).
    const creds: Record<string, { user: string; password: string }> = {
      ghcr: { user: "acme-bot", password: "ghp_" + randomBytes(18).toString("base64url") },
      ecr: { user: "AWS", password: secret() },
      quay: { user: "acme+deployer", password: randomBytes(32).toString("hex").toUpperCase() },
      dockerhub: { user: "acme", password: "dckr_pat_" + randomBytes(20).toString("base64url") },
      gcr: { user: "_json_key", password: gcpJson },
      pkgdev: { user: "_json_key_base64", password: gcpKey.base64 },
      digitalocean: { user: doToken, password: doToken },
      acr: { user: "acme-pull-token", password: randomBytes(24).toString("base64") },
      gitlab: { user: "gitlab+deploy-token-4242", password: "gldt-" + randomBytes(15).toString("base64url") },
    };
    const bigSecret = { user: "gitlab+deploy-token-8192", password: "gldt-" + randomBytes(6141).toString("base64").slice(0, 8187) };
    // X-Registry-Auth must be padded base64url: these users make the JSON need 0, 1 and 2 '=' signs.
    const awkwardUsers = ["", "x", "xy"].map((pad, i) => ({ user: `acme+robot${i}`, password: `${secret()}"\\/+?~>${pad}` }));
    const TEST_NAMESPACES = ["acme/", "smoke/", "trace/", "bench/", "fleet/"];
    const services: Record<string, { service: string; users: Omit<ServiceUsers, "refusals"> }> = {
      ghcr: {
        service: "ghcr.io",
        users: {
          users: Object.fromEntries([[creds.ghcr!.user, creds.ghcr!.password], ...awkwardUsers.map((u) => [u.user, u.password])]),
          publicRepos: [],
          readable: Object.fromEntries([creds.ghcr!.user, ...awkwardUsers.map((u) => u.user)].map((u) => [u, TEST_NAMESPACES])),
        },
      },
      quay: { service: "quay.io", users: { users: { [creds.quay!.user]: creds.quay!.password }, publicRepos: TEST_NAMESPACES, readable: { [creds.quay!.user]: ["acmecorp/"] } } },
      dockerhub: {
        service: "registry.docker.io",
        users: { users: { [creds.dockerhub!.user]: creds.dockerhub!.password }, publicRepos: ["library/", "public/"], readable: { [creds.dockerhub!.user]: ["acme/"] } },
      },
      gcr: { service: "gcr.io", users: { users: { _json_key: gcpJson, _json_key_base64: gcpKey.base64 }, publicRepos: [], readable: { _json_key: ["acme-project/"], _json_key_base64: ["acme-project/"] } } },
      pkgdev: {
        service: addresses.pkgdev.host,
        users: { users: { _json_key: gcpJson, _json_key_base64: gcpKey.base64 }, publicRepos: [], readable: { _json_key: ["acme-project/"], _json_key_base64: ["acme-project/"] } },
      },
      digitalocean: { service: "registry.digitalocean.com", users: { users: { [doToken]: doToken }, publicRepos: [], readable: { [doToken]: ["acme/"] } } },
      acr: { service: "acme.azurecr.io", users: { users: { [creds.acr!.user]: creds.acr!.password }, publicRepos: [], readable: { [creds.acr!.user]: ["acme/", "app/"] } } },
      gitlab: {
        service: "container_registry",
        users: {
          users: { [creds.gitlab!.user]: creds.gitlab!.password, [bigSecret.user]: bigSecret.password },
          publicRepos: [],
          readable: { [creds.gitlab!.user]: ["acme/"], [bigSecret.user]: ["acme/"] },
        },
      },
    };
    for (const [k, v] of Object.entries(services)) tokens.addService(v.service, { ...v.users, refusals: TOKEN_REFUSALS[k as Exclude<RegistryKind, "ecr">] });
    const tokenAuth = (k: string) => ({ realm: `${tokens.url}/token`, service: services[k]!.service, issuer: TOKEN_ISSUER, rootCertPem: certs.signingCertPem });
    // The registries themselves listen behind their fronts, on 127.<subnet>.1.<octet>:5000.
    const backend = (k: RegistryKey) => ({ address: addresses[k].address.replace(/\.0\.(\d+)$/, ".1.$1"), port: 5000 });
    const tokenKinds: RegistryKey[] = ["ghcr", "quay", "gcr", "pkgdev", "digitalocean", "acr", "gitlab"];
    const started: Registry[] = await Promise.all([
      ...[...tokenKinds, "dockerhub" as const].map((k) => startRegistry({ name: addresses[k].host, ...backend(k), token: tokenAuth(k) })),
      startRegistry({ name: ECR_HOST, ...backend("ecr"), users: { [creds.ecr!.user]: creds.ecr!.password } }),
    ]);
    for (const r of started) cleanups.push(() => r.container.stop({ remove: true, removeVolumes: true }).then(() => undefined));
    const tls = { certPem: readFileSync(certs.tlsCertFile, "utf8"), keyPem: readFileSync(certs.tlsKeyFile, "utf8") };
    const fronts: RegistryFront[] = await Promise.all([
      ...tokenKinds.map((k) => startRegistryFront({ host: addresses[k].host, address: addresses[k].address, port: 80, backend: backend(k), kind: k as RegistryKind })),
      // Docker Hub on verified TLS (443); its plain port only takes the tests' faults.
      startRegistryFront({ host: addresses.dockerhub.host, address: addresses.dockerhub.address, port: 80, backend: backend("dockerhub"), kind: "dockerhub", tls: { port: 443, ...tls } }),
      startRegistryFront({ host: ECR_HOST, address: addresses.ecr.address, port: 80, backend: backend("ecr"), kind: "ecr", ecr: { accountId: ECR_ACCOUNT, region: "us-east-1" } }),
      // Anonymous registries in front of quay.io's storage: one that stalls mid-blob, one for faults.
      startRegistryFront({ host: addresses.stall.host, address: addresses.stall.address, port: 80, backend: backend("quay"), stall: true }),
      startRegistryFront({ host: addresses.flaky.host, address: addresses.flaky.address, port: 80, backend: backend("quay") }),
    ]);
    for (const f of fronts) cleanups.push(() => f.stop());
    if (engines.some(needsHttpOn443)) {
      const plain = Object.entries(addresses).filter(([k]) => k !== "dockerhub");
      const refusers = await Promise.all(plain.map(([, a]) => startHttpsRefuser(a.address)));
      for (const r of refusers) cleanups.push(() => r.stop());
    }
    const reg = (k: RegistryKey): RegistryInfo => {
      const a = addresses[k];
      const tls = k === "dockerhub";
      const url = tls ? `https://${a.address}` : `http://${a.address}`;
      const c = creds[k];
      const pushUser = k === "ecr" ? creds.ecr! : admin;
      return {
        host: a.host,
        address: a.address,
        url,
        control: `http://${a.address}`,
        ...(c ? { user: c.user, password: c.password } : {}),
        push: { url, host: a.host, user: pushUser.user, password: pushUser.password, ...(tls ? { ca: certs.caCert, servername: a.host } : {}) },
        ...(services[k] ? { tokenService: services[k].service } : {}),
      };
    };
    const infoOf = (d: Dockerd): StackInfo => ({
      dir,
      subnet,
      dockerHost: d.dockerHost,
      socketPath: d.socketPath,
      dockerdPid: d.pid,
      engine: d.engine,
      awkwardUsers,
      registries: {
        ghcr: reg("ghcr"),
        ecr: reg("ecr"),
        quay: reg("quay"),
        stall: reg("stall"),
        flaky: reg("flaky"),
        dockerhub: reg("dockerhub"),
        gcr: reg("gcr"),
        pkgdev: reg("pkgdev"),
        digitalocean: reg("digitalocean"),
        acr: reg("acr"),
        gitlab: reg("gitlab"),
      },
      gcpKey,
      bigSecret,
      tokenServerUrl: tokens.url,
    });
    const infos = dockerds.map(infoOf);
    return {
      info: infos[0]!,
      infoFor(engine) {
        const i = dockerds.findIndex((d) => d.engine.version === engine.version && d.engine.store === engine.store);
        if (i < 0) throw new Error(`the stack runs no ${engine.version} ${engine.store} engine`);
        return infos[i]!;
      },
      footprint: () => ({ dir, pids: dockerds.map((d) => d.pid), addresses: Object.values(addresses).map((a) => a.address) }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function portOpen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port, timeout: 500 });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
}

export interface Footprint {
  dir: string;
  pids: number[];
  addresses: string[];
}

/** What a stopped stack left behind: live processes, mounts, listeners or files. */
export async function leftovers(info: Footprint): Promise<string[]> {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
    } catch {
      continue;
    }
    if (cmd.includes(info.dir) || info.pids.includes(Number(pid))) found.push(`process ${pid}: ${cmd.trim()}`);
  }
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    if (line.includes(info.dir)) found.push(`mount: ${line}`);
  }
  for (const a of info.addresses) {
    for (const port of [80, 443]) if (await portOpen(a, port)) found.push(`listener on ${a}:${port}`);
  }
  if (existsSync(info.dir)) found.push(`directory ${info.dir}`);
  return found;
}
