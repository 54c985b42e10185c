import { describe, expect, it } from "vitest";
import { encodeRegistryAuth } from "./auth-header.ts";

function goURLDecode(s: string): string {
  // What Go's base64.URLEncoding accepts: URL alphabet, padded to a multiple of 4.
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new Error("illegal base64 data");
  return Buffer.from(s, "base64url").toString("utf8");
}

describe("encodeRegistryAuth", () => {
  it.each([0, 1, 2, 3, 4, 5, 6])("pads to Go's URL encoding for payload length +%i", (extra) => {
    const auth = { username: "u", password: "p".repeat(10 + extra) + "?>~\n\"", serverAddress: "ghcr.io" };
    const header = encodeRegistryAuth(auth);
    expect(header.length % 4).toBe(0);
    expect(JSON.parse(goURLDecode(header))).toEqual({ username: "u", password: auth.password, serveraddress: "ghcr.io" });
  });

  it("never uses the standard alphabet's + and /", () => {
    const header = encodeRegistryAuth({ username: "\u00ff\u00fe", password: "\u00fb\u00ff\u00ff>>>???", serverAddress: "x" });
    expect(header).not.toMatch(/[+/]/);
  });
});
