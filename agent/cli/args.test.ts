import { describe, expect, it } from "vitest";
import { parseCommand, UsageError } from "./args.ts";

describe("parseCommand", () => {
  it("parses SPEC §3's forms", () => {
    expect(parseCommand(["bake", "--spec", "s.json"])).toEqual({ kind: "bake", spec: "s.json", json: false, report: true });
    expect(parseCommand(["bake", "--spec", "s.json", "--json", "--no-report", "--config", "c.json"])).toEqual({
      kind: "bake",
      spec: "s.json",
      json: true,
      report: false,
      config: "c.json",
    });
    expect(parseCommand(["check-credential", "--spec", "s", "--id", "rc_gh"])).toEqual({ kind: "check-credential", spec: "s", id: "rc_gh" });
    expect(parseCommand(["verify", "--spec", "s", "--service", "billing", "--config", "c"])).toEqual({ kind: "verify", spec: "s", service: "billing", config: "c" });
    expect(parseCommand(["daemon"])).toEqual({ kind: "daemon" });
    expect(parseCommand(["--version"])).toEqual({ kind: "version" });
    expect(parseCommand(["--help"])).toEqual({ kind: "help" });
  });

  it.each([[[]], [["bake"]], [["bake", "--spec"]], [["frobnicate"]], [["bake", "--spec", "s", "--bogus"]], [["daemon", "--json"]], [["check-credential", "--spec", "s"]], [["verify", "--spec", "s"]], [["verify", "--service", "x"]], [["verify", "--spec", "s", "--service", "x", "--json"]], [["bake", "--spec", "s", "--service", "x"]]])(
    "refuses %j as usage",
    (argv) => {
      expect(() => parseCommand(argv)).toThrow(UsageError);
    },
  );
});
