// The daemon's timers (the watchdog, the timed image cleanup): a run that fails
// is logged and the next one still comes.
import { describe, expect, it } from "vitest";
import { fakeClock } from "../../test/unit/fakes.ts";
import { every } from "./run.ts";

describe("every", () => {
  it("goes on after a run that rejects, telling onError, until the signal aborts", async () => {
    const stop = new AbortController();
    const errors: unknown[] = [];
    let runs = 0;
    const fn = async () => {
      runs += 1;
      if (runs === 3) stop.abort();
      if (runs === 1) throw new Error("cleanup failed: daemon is shutting down");
    };
    await every(fakeClock(0), 1000, stop.signal, fn, (err) => errors.push(err));
    expect(runs).toBe(3);
    expect(errors.map((e) => (e as Error).message)).toEqual(["cleanup failed: daemon is shutting down"]);
  });
});
