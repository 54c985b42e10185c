import { describe, expect, it } from "vitest";
import { REDACTED, Scrubber } from "./scrub.ts";

describe("Scrubber", () => {
  it("removes a registered secret from any string, in raw, JSON-escaped and base64 forms", () => {
    const s = new Scrubber();
    const secret = 'k"ey\nwith\\odd+chars/=';
    s.add(secret);
    expect(s.scrub(`x ${secret} y`)).toBe(`x ${REDACTED} y`);
    expect(s.scrub(JSON.stringify({ m: secret }))).not.toContain(JSON.stringify(secret).slice(1, -1));
    expect(s.scrub(Buffer.from(secret).toString("base64"))).toBe(REDACTED);
  });

  it("scrubs every string in nested values, including keys' values in arrays", () => {
    const s = new Scrubber();
    s.add("dop_v1_abc123");
    const out = s.scrubValue({ username: "dop_v1_abc123", list: ["a dop_v1_abc123 b"], n: 3 });
    expect(out).toEqual({ username: REDACTED, list: [`a ${REDACTED} b`], n: 3 });
  });

  it("removes the longer of two overlapping secrets whole", () => {
    const s = new Scrubber();
    s.add("abc");
    s.add("abcdef");
    expect(s.scrub("abcdef")).toBe(REDACTED);
  });

  it("leaves strings alone when nothing is registered", () => {
    expect(new Scrubber().scrub("hello")).toBe("hello");
  });
});
