// Structured logs to stderr with pino. Known secret-bearing fields are redacted,
// and every line passes the scrubber, which knows each secret fetched so far.
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

export function createLogger(level: string, scrubber: Scrubber, dest: pino.DestinationStream = pino.destination({ fd: 2, sync: true })): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACT, censor: "[REDACTED]" },
      hooks: { streamWrite: (s) => scrubber.scrub(s) },
    },
    dest,
  );
}
