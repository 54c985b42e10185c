import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createNotifier, watchdogIntervalMs } from "./sd-notify.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

/**
 * A `systemd-notify` on PATH that records what it was asked to send; a message
 * about reconciling is slow to go out, as a process spawned on a loaded box can be.
 */
function fakeSystemdNotify() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-notify-"));
  dirs.push(dir);
  const log = path.join(dir, "sent");
  writeFileSync(
    path.join(dir, "systemd-notify"),
    `#!/bin/sh\nshift\ncase "$*" in *reconciling*) sleep 0.4 ;; esac\nprintf '%s\\n' "$*" >> "${log}"\n`,
  );
  chmodSync(path.join(dir, "systemd-notify"), 0o755);
  return { env: { NOTIFY_SOCKET: "/run/fake-notify", PATH: `${dir}:/usr/bin:/bin` }, sent: () => readFileSync(log, "utf8").trim().split("\n") };
}

describe("createNotifier", () => {
  it("is off outside a Type=notify unit", () => {
    expect(createNotifier({}, () => undefined)).toBeUndefined();
  });

  it("delivers messages in the order they were given, even when one is slow to go out", async () => {
    const fake = fakeSystemdNotify();
    const errors: Error[] = [];
    const notify = createNotifier(fake.env, (e) => errors.push(e))!;
    // What the daemon does at start: the status text, then at once the next one.
    // systemd keeps the last STATUS= it received: out of order, `systemctl status`
    // would say "reconciling (start)" for good.
    await Promise.all([notify("STATUS=reconciling (start)"), notify("STATUS=serving on 127.0.0.1:1; reconciled (nothing to do)"), notify("WATCHDOG=1")]);
    expect(errors).toEqual([]);
    expect(fake.sent()).toEqual(["STATUS=reconciling (start)", "STATUS=serving on 127.0.0.1:1; reconciled (nothing to do)", "WATCHDOG=1"]);
  });

  it("goes on after a message that could not even be started (execFile throws)", async () => {
    const fake = fakeSystemdNotify();
    const errors: Error[] = [];
    const notify = createNotifier(fake.env, (e) => errors.push(e))!;
    // A NUL byte in an argument makes execFile throw instead of calling back.
    await notify("STATUS=a\0b");
    await notify("WATCHDOG=1");
    expect(errors).toHaveLength(1);
    expect(fake.sent()).toEqual(["WATCHDOG=1"]);
  });

  it("goes on after a message that could not be sent, and says why", async () => {
    const errors: Error[] = [];
    const notify = createNotifier({ NOTIFY_SOCKET: "/run/fake-notify", PATH: "/nonexistent" }, (e) => errors.push(e))!;
    await notify("STATUS=a");
    await notify("STATUS=b");
    expect(errors).toHaveLength(2);
    expect(errors[0]!.message).toMatch(/ENOENT|systemd-notify/);
  });
});

describe("watchdogIntervalMs", () => {
  it("pings at half the interval, only for this process", () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "20000000" })).toBe(10_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "20000000", WATCHDOG_PID: String(process.pid + 1) })).toBeUndefined();
    expect(watchdogIntervalMs({})).toBeUndefined();
  });
});
