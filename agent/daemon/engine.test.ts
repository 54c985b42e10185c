import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock, systemRandom } from "../clock.ts";
import { REDACTED, Scrubber } from "../errors/scrub.ts";
import { Deliverer } from "../report/deliver.ts";
import { makeEvent } from "../report/events.ts";
import { Reporter } from "../report/reporter.ts";
import { Outbox } from "../state/outbox.ts";
import { daemonEmit } from "./engine.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function parts(sending: boolean) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-emit-"));
  dirs.push(dir);
  const outbox = new Outbox(dir, systemClock);
  const logger = pino({ level: "silent" });
  const deliverer = new Deliverer({ outbox, controlPlaneUrl: "http://127.0.0.1:9/", token: "t", post: async () => 202, clock: systemClock, random: systemRandom, logger });
  const reporter = sending ? new Reporter(outbox, { boxId: "box-1", deliverer }) : new Reporter(outbox);
  const scrubber = new Scrubber();
  scrubber.pin("hunter2-secret-value");
  let nudged = 0;
  const emit = daemonEmit({ logger, scrubber }, reporter, sending ? { nudge: () => void nudged++ } : undefined);
  return { emit, outbox, nudged: () => nudged };
}

describe("daemonEmit", () => {
  it("hands each event, scrubbed, to the same Reporter the CLI uses, and nudges the delivery loop", async () => {
    const { emit, outbox, nudged } = parts(true);
    await emit(makeEvent("bake.failed", "bk1", 1, { error: { code: "internal", message: "saw hunter2-secret-value", hint: "h", retryable: false } }));
    const files = await outbox.list();
    expect(files).toHaveLength(1);
    const entry = JSON.parse(readFileSync(files[0]!, "utf8")) as { boxId: string; event: { error: { message: string } } };
    expect(entry.boxId).toBe("box-1");
    expect(entry.event.error.message).toBe(`saw ${REDACTED}`);
    expect(nudged()).toBe(1);
  });

  it("without a control plane, the event is only logged: nothing in the outbox", async () => {
    const { emit, outbox } = parts(false);
    await emit(makeEvent("bake.started", "bk1", 1));
    expect(await outbox.depth()).toBe(0);
  });
});
