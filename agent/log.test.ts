import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { Scrubber } from "./errors/scrub.ts";
import { createLogger, withPriority } from "./log.ts";

function capture(journal: boolean) {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const scrubber = new Scrubber();
  scrubber.add("ghp_secretsecretsecret");
  return { logger: createLogger("info", scrubber, { journal, dest }), lines };
}

describe("the agent's log lines", () => {
  it("are JSON with the level's name and an ISO time, and pass the scrubber", () => {
    const { logger, lines } = capture(false);
    logger.warn({ bakeId: "bk_1" }, "login with ghp_secretsecretsecret refused");
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: "warn", bakeId: "bk_1", msg: "login with [REDACTED] refused" });
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("carry their syslog priority for journald under systemd", () => {
    const { logger, lines } = capture(true);
    logger.error("x");
    logger.info("y");
    expect(lines[0]).toMatch(/^<3>\{"level":"error"/);
    expect(lines[1]).toMatch(/^<6>\{"level":"info"/);
    expect(withPriority('{"level":"debug"}')).toBe('<7>{"level":"debug"}');
  });
});
