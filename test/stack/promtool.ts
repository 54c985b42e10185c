// Finds promtool: on PATH, or where .ci/run unpacks Debian's package.
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";

export const PROMTOOL_CACHE = "/var/cache/slothbox-dev/promtool/usr/bin/promtool";

export function promtool(): string {
  try {
    return execFileSync("sh", ["-c", "command -v promtool"], { encoding: "utf8" }).trim();
  } catch {
    if (existsSync(PROMTOOL_CACHE)) return PROMTOOL_CACHE;
    throw new Error(`promtool not found on PATH or at ${PROMTOOL_CACHE}; run .ci/run once to install it`);
  }
}
