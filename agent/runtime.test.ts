import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.ts";
import { REDACTED } from "./errors/scrub.ts";
import { createRuntime } from "./runtime.ts";

const config = loadConfig({ env: {}, readFile: () => undefined });

describe("createRuntime and the proxy variables", () => {
  it("pins the proxy's user and password in the scrubber: they are secrets like any other", () => {
    const rt = createRuntime(config, { HTTPS_PROXY: "http://corp-proxy-user:s3cret%2Fproxy-pass@proxy.corp.example:3128" }, { report: false });
    expect(rt.scrubber.scrub("407 for corp-proxy-user with s3cret/proxy-pass")).toBe(`407 for ${REDACTED} with ${REDACTED}`);
    expect(rt.proxy.route("https://ssm.us-east-1.amazonaws.com")).toMatchObject({ via: "proxy", shown: "http://proxy.corp.example:3128" });
  });

  it("refuses a proxy variable it cannot use, as a configuration error naming the variable and not its value", () => {
    const make = () => createRuntime(config, { https_proxy: "socks5://user:hunter2-proxy@proxy:1080" }, { report: false });
    expect(make).toThrow(ConfigError);
    expect(make).toThrow(/^https_proxy names a socks5:\/\/ proxy/);
    expect(make).not.toThrow(/hunter2/);
  });
});
