import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.ts";
import { REDACTED } from "./errors/scrub.ts";
import { makeEvent } from "./report/events.ts";
import { createReporter, createRuntime } from "./runtime.ts";

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

describe("createRuntime and createReporter: one test of whether events are sent", () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
  function reportingConfig() {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-runtime-"));
    dirs.push(dir);
    const tokenFile = path.join(dir, "cp-token");
    writeFileSync(tokenFile, "cp-token-value-1234\n");
    return loadConfig({
      env: { SLOTHBOX_CONTROL_PLANE_URL: "http://127.0.0.1:9/", SLOTHBOX_BOX_ID: "box-1", SLOTHBOX_CONTROL_PLANE_TOKEN_FILE: tokenFile, SLOTHBOX_STATE_DIR: dir },
      readFile: () => undefined,
    });
  }

  it("a reporting command with a control plane gets its url, token (pinned) and boxId, and a reporter that puts events in the outbox", async () => {
    const rt = createRuntime(reportingConfig(), {}, { report: true });
    expect(rt.controlPlane).toEqual({ url: "http://127.0.0.1:9/", token: "cp-token-value-1234", boxId: "box-1" });
    expect(rt.scrubber.scrub("cp-token-value-1234")).toBe(REDACTED);
    const reporter = createReporter(rt, { enabled: true });
    expect(reporter.enabled).toBe(true);
    await reporter.emit(makeEvent("bake.started", "bk1", 1));
    expect(await reporter.outbox.depth()).toBe(1);
  });

  it("--no-report or a command that does not report sends nothing and leaves the outbox alone", async () => {
    const config = reportingConfig();
    const quiet = createRuntime(config, {}, { report: false });
    expect(quiet.controlPlane).toBeUndefined();
    for (const reporter of [createReporter(quiet, { enabled: true }), createReporter(createRuntime(config, {}, { report: true }), { enabled: false })]) {
      expect(reporter.enabled).toBe(false);
      await reporter.emit(makeEvent("bake.started", "bk1", 1));
      expect(await reporter.outbox.depth()).toBe(0);
    }
  });
});
