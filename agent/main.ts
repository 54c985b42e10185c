// The command line: argv → config → runtime (runtime.ts, the composition root) →
// command; the only place that exits the process (entry.ts loads it). Exit codes
// per docs/reference.md §3.
import { readFileSync } from "node:fs";
import { parseCommand, USAGE, UsageError, type Command } from "./cli/args.ts";
import type { Io } from "./io.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { Scrubber } from "./errors/scrub.ts";
import { plainGlobalAgents } from "./net/proxy.ts";
import { unsafeNodeEnv } from "./node-env.ts";
import { createRuntime, type Runtime } from "./runtime.ts";
import { EXIT } from "./cli/exit.ts";
import { VERSION } from "./version.ts";

/**
 * Every byte the process writes to stdout and stderr passes the scrubber: the
 * agent's own output, and what libraries or Node itself print past it (the agent
 * refuses NODE_DEBUG, node-env.ts; whatever else writes past it is caught here).
 */
const scrubber = new Scrubber();
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  // The overloads of write() (encoding, callback) pass through untouched; only the text is scrubbed.
  stream.write = ((chunk: unknown, ...rest: unknown[]) =>
    write(typeof chunk === "string" ? scrubber.scrub(chunk) : chunk instanceof Uint8Array ? scrubber.scrub(Buffer.from(chunk).toString("utf8")) : chunk, ...rest)) as typeof stream.write;
}

/** One line for a person: the message and where it came from, never a frame of minified source. */
function oneLine(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const at = err.stack?.split("\n").find((l) => l.trim().startsWith("at "))?.trim();
  return `${err.name}: ${err.message}${at ? ` (${at})` : ""}`;
}

// A failure nobody awaited (inside a library) must not end the daemon, nor print source code.
process.on("unhandledRejection", (err) => {
  process.stderr.write(`slothbox-agent: error (continuing): an operation failed unexpectedly: ${oneLine(err)}\n`);
});
process.on("uncaughtException", (err) => {
  process.stderr.write(`slothbox-agent: internal error: ${oneLine(err)}\n`);
  process.exit(EXIT.failed);
});

const io: Io = {
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
};

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * SIGINT and SIGTERM abort the command, which still reports (the bake ends
 * `interrupted`, its events go to the outbox and out within the delivery budget);
 * the exit code follows the signal (130 / 143). A second signal exits at once:
 * what was not delivered is already in the outbox.
 */
function signals(): { signal: AbortSignal; code: () => number | undefined; dispose: () => void } {
  const ctl = new AbortController();
  let code: number | undefined;
  const on = (name: "SIGINT" | "SIGTERM", exit: number) => () => {
    if (code !== undefined) {
      io.stderr(`received ${name} again: exiting now; undelivered events stay in the outbox`);
      process.exit(code);
    }
    code = exit;
    io.stderr(`received ${name}: aborting; no manifest will be written, the bake is reported as interrupted`);
    ctl.abort(new Error(`interrupted by ${name}`));
  };
  const int = on("SIGINT", 130);
  const term = on("SIGTERM", 143);
  process.on("SIGINT", int);
  process.on("SIGTERM", term);
  return {
    signal: ctl.signal,
    code: () => code,
    dispose: () => {
      process.off("SIGINT", int);
      process.off("SIGTERM", term);
    },
  };
}

/** A command that needs the configuration. */
type Runnable = Exclude<Command, { kind: "help" | "version" }>;

/** The command argv asks for, or the exit code of one answered here (usage, help, version). */
function parseArgv(argv: string[]): Runnable | number {
  let cmd: Command;
  try {
    cmd = parseCommand(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n\n${USAGE}`);
      return EXIT.usage;
    }
    throw err;
  }
  if (cmd.kind === "help") {
    io.stdout(USAGE);
    return EXIT.ok;
  }
  if (cmd.kind === "version") {
    io.stdout(`slothbox-agent ${VERSION}`);
    return EXIT.ok;
  }
  return cmd;
}

/** The configuration's error, said and turned into its exit code; anything else is not this function's. */
function configExit(err: unknown): number {
  if (!(err instanceof ConfigError)) throw err;
  io.stderr(`error: invalid configuration: ${err.message}`);
  return EXIT.config;
}

function runtimeFor(cmd: Runnable): Runtime | number {
  try {
    const config = loadConfig({ ...(cmd.config !== undefined ? { file: cmd.config } : {}), env: process.env, readFile: readIfExists });
    return createRuntime(config, process.env, { scrubber, report: cmd.kind === "daemon" || (cmd.kind === "bake" && cmd.report) });
  } catch (err) {
    return configExit(err);
  }
}

async function run(rt: Runtime, cmd: Runnable): Promise<number> {
  // The daemon handles its own signals (SIGTERM exits 0 there, SIGHUP reconciles).
  const sig = cmd.kind === "daemon" ? { signal: new AbortController().signal, code: () => undefined, dispose: () => undefined } : signals();
  try {
    switch (cmd.kind) {
      case "bake": {
        const { bakeCommand } = await import("./cli/bake-command.ts");
        const code = await bakeCommand(rt, cmd, io, sig.signal);
        return sig.code() ?? code;
      }
      case "check-credential": {
        const { checkCredentialCommand } = await import("./cli/check-command.ts");
        const code = await checkCredentialCommand(rt, cmd, io, sig.signal);
        return sig.code() ?? code;
      }
      case "verify": {
        const { verifyCommand } = await import("./cli/verify-command.ts");
        const code = await verifyCommand(rt, cmd, io, sig.signal, rt.signatureVerifier());
        return sig.code() ?? code;
      }
      case "daemon": {
        const { runDaemon } = await import("./daemon/run.ts");
        return await runDaemon(rt, io);
      }
    }
  } catch (err) {
    if (err instanceof ConfigError) return configExit(err);
    const code = sig.code();
    if (code !== undefined) return code;
    throw err;
  } finally {
    sig.dispose();
  }
}

async function main(argv: string[]): Promise<number> {
  const unsafe = unsafeNodeEnv(process.env);
  if (unsafe) {
    io.stderr(`error: ${unsafe}`);
    return EXIT.config;
  }
  await plainGlobalAgents(process.env);
  const cmd = parseArgv(argv);
  if (typeof cmd === "number") return cmd;
  const rt = runtimeFor(cmd);
  if (typeof rt === "number") return rt;
  return run(rt, cmd);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Open sockets (the SDK's keep-alive agents) must not hold the exit.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (err: unknown) => {
    io.stderr(`internal error: ${oneLine(err)}`);
    process.exit(EXIT.failed);
  },
);
