// Structured logs to stderr with pino: one JSON object a line, with the level's
// name and an ISO time, so that `journalctl -u slothbox-agent -o cat` reads as
// well as it parses. Under systemd (JOURNAL_STREAM set) each line starts with
// its syslog priority (`<4>` …), which journald takes for the entry's priority:
// `journalctl -p warning` then finds the agent's warnings. Known secret-bearing
// fields are redacted, and every line passes the scrubber, which knows each
// secret fetched so far.
import pino, { type Logger } from "pino";
import type { Scrubber } from "./errors/scrub.ts";

export type { Logger };

const REDACT = [
  "password",
  "secret",
  "token",
  "authorization",
  "*.password",
  "*.secret",
  "*.token",
  "*.authorization",
  "auth.password",
  "headers.authorization",
  'headers["x-registry-auth"]',
];

/** syslog priorities (sd-daemon.h) of pino's levels. */
const PRIORITY: Record<string, number> = { fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 };

/** `<N>` before a serialized line, from its level. Pure, for the test. */
export function withPriority(line: string): string {
  const level = /"level":"(\w+)"/.exec(line)?.[1];
  return `<${PRIORITY[level ?? "info"] ?? 6}>${line}`;
}

export function createLogger(
  level: string,
  scrubber: Scrubber,
  opts: { journal?: boolean; dest?: pino.DestinationStream } = {},
): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: "[REDACTED]" },
      hooks: { streamWrite: (s) => (opts.journal ? withPriority(scrubber.scrub(s)) : scrubber.scrub(s)) },
    },
    opts.dest ?? pino.destination({ fd: 2, sync: true }),
  );
}
