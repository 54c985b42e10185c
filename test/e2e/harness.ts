// Runs the built agent as a real process against the stack: its own state dir,
// HOME and config per box; an AWS stand-in and a control plane per test file;
// and the checks every end-to-end test makes (the secret absent everywhere).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type Docker from "dockerode";
import type { AwsStandIn } from "../stack/aws/stand-in.ts";
import type { ControlPlane } from "../stack/control-plane.ts";
import type { StackInfo } from "../stack/stack.ts";
import { leakForms, leaksIn } from "./secret-forms.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const AGENT = path.join(ROOT, "dist/slothbox-agent.mjs");
export const PREFIX = "/slothbox/registry-credentials/";

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface Box {
  dir: string;
  stateDir: string;
  home: string;
  configFile: string;
  cpTokenFile: string;
  env: Record<string, string>;
  /** The instance role's key ids, secret keys and session tokens the box's AWS stand-in handed out so far. */
  roleSecrets(): string[];
  write(name: string, content: unknown): string;
  /** `opts.agent`: the command that runs the agent (default: this Node with the built bundle). */
  run(args: string[], opts?: RunOptions): Promise<RunResult>;
  cleanup(): void;
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Variables of the box's environment to leave out (an AWS_ENDPOINT_URL_* that points at the stand-in). */
  unset?: string[];
  /** Resolve names from /etc/hosts only: a real AWS name then fails as it does in a subnet without DNS to it, and no query leaves the machine. */
  hostsFileOnly?: boolean;
  /** With hostsFileOnly: this file is the agent's /etc/hosts (names of the test's own, under .test). */
  hostsFile?: string;
  /** The command that runs the agent (default: this Node with the built bundle). */
  agent?: string[];
  timeoutMs?: number;
  onOutput?: (chunk: string, kill: (s: NodeJS.Signals) => void) => void;
}

/** The agent's environment for one run: the box's, with `opts.env` over it and `opts.unset` left out. */
export function runEnv(base: Record<string, string>, opts: Pick<RunOptions, "env" | "unset"> = {}): Record<string, string> {
  const env = { ...base, ...opts.env };
  for (const k of opts.unset ?? []) delete env[k];
  return env;
}

/**
 * The command that runs the agent: `opts.agent`; else, where names must come
 * from /etc/hosts only, node inside a mount namespace of its own whose
 * nsswitch.conf says `hosts: files` (the machine's file is untouched); else node.
 */
/** `dir`: the box's own directory, where the hosts-only nsswitch.conf goes; `nodeArgs`: Node flags for the agent (the launcher's, in the bench). */
export function agentFor(opts: Pick<RunOptions, "agent" | "hostsFileOnly" | "hostsFile">, dir: string, nodeArgs: string[] = []): string[] {
  if (opts.agent) return opts.agent;
  const node = [process.execPath, ...nodeArgs, AGENT];
  if (!opts.hostsFileOnly) return node;
  if (opts.hostsFile) {
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/nsswitch.conf && mount --bind "$1" /etc/hosts && shift && exec "$@"', hostsOnlyNsswitch(dir), opts.hostsFile, ...node];
  }
  return ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/nsswitch.conf && exec "$@"', hostsOnlyNsswitch(dir), ...node];
}

/** The machine's nsswitch.conf with `hosts: files`, written into `dir` (the box's, removed with it). */
function hostsOnlyNsswitch(dir: string): string {
  const file = path.join(dir, "nsswitch.conf");
  const system = readFileSync("/etc/nsswitch.conf", "utf8");
  writeFileSync(file, /^hosts:/m.test(system) ? system.replace(/^hosts:.*$/m, "hosts: files") : `${system}\nhosts: files\n`);
  return file;
}

export function uid(): string {
  return randomBytes(4).toString("hex");
}

/** A fresh "box": config pointing at the stack, the stand-in and (optionally) the control plane. */
export function newBox(stack: StackInfo, aws: AwsStandIn, opts: { controlPlane?: ControlPlane; config?: Record<string, unknown> } = {}): Box {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-box-"));
  const stateDir = path.join(dir, "state");
  const home = path.join(dir, "home");
  mkdirSync(home);
  const cpTokenFile = path.join(dir, "cp-token");
  const config: Record<string, unknown> = {
    boxId: "box-e2e",
    stateDir,
    dockerSocket: stack.dockerHost,
    awsRegion: "us-east-1",
    pullRetries: 1,
    logLevel: "warn",
    ...(opts.controlPlane ? { controlPlaneUrl: opts.controlPlane.url, controlPlaneTokenFile: cpTokenFile } : {}),
    ...opts.config,
  };
  if (opts.controlPlane) writeFileSync(cpTokenFile, opts.controlPlane.token + "\n", { mode: 0o600 });
  const configFile = path.join(dir, "agent.json");
  writeFileSync(configFile, JSON.stringify(config));
  // Only what a box has: PATH, HOME, and the standard variables pointing at the stand-ins.
  const env: Record<string, string> = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: home, ...aws.env() };
  const box: Box = {
    dir,
    stateDir,
    home,
    configFile,
    cpTokenFile,
    env,
    roleSecrets: () => aws.issuedCredentials().flatMap((c) => [c.accessKeyId, c.secretAccessKey, c.sessionToken]),
    write(name, content) {
      const f = path.join(dir, name);
      writeFileSync(f, typeof content === "string" ? content : JSON.stringify(content, null, 2));
      return f;
    },
    run(args, o = {}) {
      return runAgent([...args, "--config", configFile], runEnv(env, o), o.timeoutMs ?? 90_000, o.onOutput, agentFor(o, dir));
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return box;
}

export function runAgent(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 90_000,
  onOutput?: (chunk: string, kill: (s: NodeJS.Signals) => void) => void,
  agent: string[] = [process.execPath, AGENT],
): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(agent[0]!, [...agent.slice(1), ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const kill = (s: NodeJS.Signals) => child.kill(s);
    // Either stream: --json moves the step lines to stderr.
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      onOutput?.(c.toString(), kill);
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
      onOutput?.(c.toString(), kill);
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`agent did not exit within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Every file under `dir`, as text (binary files too: a secret is bytes either way). */
export function filesUnder(dir: string): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const f = path.join(d, e);
      const st = statSync(f, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(f);
      else if (st.isFile()) out.push({ file: f, text: readFileSync(f).toString("latin1") });
    }
  };
  walk(dir);
  return out;
}

/**
 * Where a secret leaked, if anywhere, in any form of secret-forms.ts: output,
 * state dir, HOME, events received, and any other text given. The instance
 * role's credentials the box's AWS stand-in handed out are searched for too,
 * whatever the secret asked about.
 */
export function secretLeaks(secret: string, box: Box, run: RunResult | RunResult[], events: unknown[] = [], other: string[] = []): string[] {
  const runs = Array.isArray(run) ? run : [run];
  const searched = [{ secret, label: "", forms: leakForms(secret) }, ...box.roleSecrets().map((s) => ({ secret: s, label: "instance role credential ", forms: leakForms(s) }))];
  const places: [string, string][] = [
    ...runs.flatMap((r, i): [string, string][] => [
      [`stdout#${i}`, r.stdout],
      [`stderr#${i}`, r.stderr],
    ]),
    ...filesUnder(box.stateDir).map((f): [string, string] => [f.file, f.text]),
    ...filesUnder(box.home).map((f): [string, string] => [f.file, f.text]),
    ["events", JSON.stringify(events)],
    ...other.map((text, i): [string, string] => [`other#${i}`, text]),
  ];
  return places.flatMap(([where, text]) => searched.flatMap((x) => leaksIn(text, x.secret, x.forms).map((f) => `${where}: ${x.label}${JSON.stringify(f)}`)));
}

export function parseJsonResult(r: RunResult): {
  bakeId: string;
  status: string;
  services: { name: string; image: string; status: string; durationMs: number; imageId?: string; digest?: string; error?: { code: string; message: string; hint: string; retryable: boolean; registryMessage?: string; attempts?: number }; signature?: { policyId: string; format: string; keyId: string } }[];
  violations: { path: string; code: string; message: string }[];
} {
  const lines = r.stdout.trim().split("\n");
  if (lines.length !== 1) throw new Error(`--json must print exactly one line on stdout, got ${lines.length}:\n${r.stdout}`);
  return JSON.parse(lines[0]!);
}

/**
 * What Docker has under `ref`: its ID (the config digest on the classic image
 * store, the manifest digest on the containerd store) and the repository digests
 * it records. Tests compare the agent's imageId with the ID Docker reports, and
 * check the content by the pushed manifest digest: the same on every engine.
 */
export async function dockerImage(docker: Docker, ref: string): Promise<{ id: string; digests: string[] } | undefined> {
  try {
    const i = await docker.getImage(ref).inspect();
    return { id: i.Id, digests: (i.RepoDigests ?? []).map((d) => d.slice(d.indexOf("@") + 1)) };
  } catch {
    return undefined;
  }
}
