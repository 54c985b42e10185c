// Commands run inside a booted machine, from outside: `nsenter -t <init> -a`
// enters all of the container's namespaces (mount, PID, UTS, IPC, cgroup), so
// systemctl talks to the container's PID 1 and journalctl reads its journal.
import { spawn } from "node:child_process";

/** Default bound for one command run inside. */
const EXEC_TIMEOUT_MS = 60_000;
/** Inside, commands see a box's root environment, not the test runner's. */
const INSIDE_ENV = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  LANG: "C.UTF-8",
  TERM: "dumb",
  SYSTEMD_COLORS: "0",
  SYSTEMD_PAGER: "",
  PAGER: "cat",
};

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface ExecOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** `systemctl show` properties the tests read; numbers parsed. */
export interface UnitState {
  ActiveState: string;
  SubState: string;
  MainPID: number;
  NRestarts: number;
  ExecMainStatus: number;
  /** 1 exited, 2 killed, 3 dumped (siginfo code); ExecMainStatus is then the signal. */
  ExecMainCode: number;
  StatusText: string;
  Result: string;
}

export interface Inside {
  /** Runs a command inside. A string runs with `sh -c`. */
  exec(cmd: string[] | string, opts?: ExecOptions): Promise<ExecResult>;
  systemctl(args: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** `journalctl -u UNIT` lines; `output` is journalctl's -o (default short-precise). */
  journal(unit: string, opts?: { output?: string; since?: string }): Promise<string[]>;
  /** Polls `predicate` until it returns a truthy value, at most `ms`. */
  waitFor<T>(predicate: () => T | Promise<T>, ms: number, what?: string): Promise<NonNullable<T>>;
  unitState(unit: string): Promise<UnitState>;
  writeFile(file: string, content: string | Buffer, mode?: number): Promise<void>;
}

export function inside(name: string, initPid: () => number): Inside {
  const exec = (cmd: string[] | string, o: ExecOptions = {}): Promise<ExecResult> => {
    const argv = typeof cmd === "string" ? ["sh", "-c", cmd] : cmd;
    const t0 = Date.now();
    const timeoutMs = o.timeoutMs ?? EXEC_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      // Own process group: nsenter forks to enter the PID namespace, and a
      // timeout must kill that child too, not only nsenter.
      const p = spawn("nsenter", ["-t", String(initPid()), "-a", ...argv], {
        stdio: [o.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
        env: { ...INSIDE_ENV, ...o.env },
        detached: true,
      });
      let stdout = "";
      let stderr = "";
      p.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
      p.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
      if (o.input !== undefined) p.stdin!.end(o.input);
      const timer = setTimeout(() => {
        try {
          process.kill(-(p.pid ?? 0), "SIGKILL");
        } catch {
          // already gone
        }
        reject(new Error(`inside ${name}: \`${argv.join(" ")}\` did not finish within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      }, timeoutMs);
      p.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      p.on("exit", (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
      });
    });
  };

  return {
    exec,
    systemctl: (args, o) => exec(["systemctl", ...args], o),
    async journal(unit, o = {}) {
      const r = await exec(["journalctl", "-u", unit, "--no-pager", "-q", "-o", o.output ?? "short-precise", ...(o.since ? ["--since", o.since] : [])]);
      return r.stdout.split("\n").filter(Boolean);
    },
    async waitFor(predicate, ms, what = "condition") {
      const deadline = Date.now() + ms;
      for (;;) {
        const v = await predicate();
        if (v) return v as NonNullable<Awaited<typeof v>>;
        if (Date.now() > deadline) throw new Error(`${name}: timed out after ${ms} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async unitState(unit) {
      const props = ["ActiveState", "SubState", "MainPID", "NRestarts", "ExecMainStatus", "ExecMainCode", "StatusText", "Result"];
      const r = await exec(["systemctl", "show", unit, ...props.map((p) => `--property=${p}`)]);
      const kv = new Map(r.stdout.split("\n").filter(Boolean).map((l): [string, string] => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      const num = (k: string) => Number(kv.get(k) ?? "NaN");
      return {
        ActiveState: kv.get("ActiveState") ?? "",
        SubState: kv.get("SubState") ?? "",
        MainPID: num("MainPID"),
        NRestarts: num("NRestarts"),
        ExecMainStatus: num("ExecMainStatus"),
        ExecMainCode: num("ExecMainCode"),
        StatusText: kv.get("StatusText") ?? "",
        Result: kv.get("Result") ?? "",
      };
    },
    async writeFile(file, content, mode = 0o644) {
      // Parent directories inside are created 0700 (umask 077), like the secrets' directory on a box.
      const r = await exec(["sh", "-c", 'umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"', "sh", file, mode.toString(8)], { input: content });
      if (r.code !== 0) throw new Error(`${name}: writing ${file} failed (${r.code}): ${r.stderr}`);
    },
  };
}
