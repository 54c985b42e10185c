import { describe, expect, it } from "vitest";
import { unsafeNodeEnv } from "./node-env.ts";

describe("unsafeNodeEnv", () => {
  it.each([
    [{ NODE_DEBUG: "net" }, "NODE_DEBUG"],
    [{ NODE_DEBUG: "*" }, "NODE_DEBUG"],
    [{ NODE_OPTIONS: "--require /tmp/x.js" }, "NODE_OPTIONS"],
    [{ NODE_OPTIONS: "--inspect", NODE_DEBUG: "http" }, "NODE_DEBUG"],
  ])("refuses %j, naming %s", (env, name) => {
    expect(unsafeNodeEnv(env)).toMatch(new RegExp(`^refusing to run with ${name} set: .*; unset them\\.$`));
  });

  it.each([{}, { NODE_DEBUG: "", NODE_OPTIONS: " " }, { NODE_EXTRA_CA_CERTS: "/etc/ssl/private-ca.pem", DEBUG: "*" }])("lets %j run", (env) => {
    expect(unsafeNodeEnv(env)).toBeUndefined();
  });
});
