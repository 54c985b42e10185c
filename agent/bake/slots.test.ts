import { describe, expect, it } from "vitest";
import { Slots } from "./slots.ts";

describe("Slots", () => {
  it("grants at most its size at once, in order of asking, and each release once", async () => {
    const slots = new Slots(2);
    const never = new AbortController().signal;
    const a = await slots.acquire(never);
    const b = await slots.acquire(never);
    const order: string[] = [];
    const c = slots.acquire(never).then((r) => (order.push("c"), r));
    const d = slots.acquire(never).then((r) => (order.push("d"), r));
    await Promise.resolve();
    expect(order).toEqual([]);
    a();
    a();
    (await c)();
    b();
    (await d)();
    expect(order).toEqual(["c", "d"]);
    // Every slot is back: two at once again, a third waits.
    await slots.acquire(never);
    await slots.acquire(never);
    let third = false;
    void slots.acquire(never).then(() => (third = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(third).toBe(false);
  });

  it("stops waiting when aborted, and the slot it did not get goes to the next", async () => {
    const slots = new Slots(1);
    const never = new AbortController().signal;
    const held = await slots.acquire(never);
    const ctl = new AbortController();
    const aborted = slots.acquire(ctl.signal);
    const next = slots.acquire(never);
    ctl.abort(new Error("stop"));
    await expect(aborted).rejects.toThrow("stop");
    held();
    await expect(next).resolves.toBeTypeOf("function");
  });
});
