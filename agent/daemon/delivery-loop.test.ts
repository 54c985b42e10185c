import pino from "pino";
import { describe, expect, it } from "vitest";
import type { DrainResult } from "../report/deliver.ts";
import { DeliveryLoop } from "./delivery-loop.ts";

/** Polls until `fn` holds; the loop runs on its own promise chain. */
async function until(fn: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !fn(); i++) await new Promise((r) => setImmediate(r));
  if (!fn()) throw new Error("condition never held");
}

describe("DeliveryLoop", () => {
  it("waits by the clock it is given: the backoff after a failure, the idle poll until nudged, no real waiting", async () => {
    const slept: number[] = [];
    // Backoffs pass at once; the idle poll lasts until the loop is nudged or stopped.
    const clock = {
      sleep: (ms: number, signal?: AbortSignal) => {
        slept.push(ms);
        if (ms < 30_000) return Promise.resolve();
        return new Promise<void>((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason), { once: true }));
      },
    };
    const answers: DrainResult[] = [
      { delivered: 0, dropped: 0, blocked: true },
      { delivered: 0, dropped: 0, blocked: true },
      { delivered: 1, dropped: 0, blocked: false },
    ];
    let passes = 0;
    let drained = 0;
    const deliverer = {
      drainOnce: async () => (passes++, answers.shift() ?? { delivered: 0, dropped: 0, blocked: false }),
      backoffMs: () => 40,
      drain: async () => void drained++,
    };
    const loop = new DeliveryLoop(deliverer, pino({ level: "silent" }), clock);
    loop.start();
    try {
      // Two failures back off (at least 100 ms each), then the empty outbox waits for the idle poll.
      await until(() => slept.length === 3);
      expect(slept).toEqual([100, 100, 30_000]);
      expect(passes).toBe(3);
      loop.nudge();
      await until(() => passes === 4);
    } finally {
      await loop.stop(1000);
    }
    expect(drained).toBe(1);
  });
});
