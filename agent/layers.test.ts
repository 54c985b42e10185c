// docs/architecture.md "Which way dependencies point": the commands (cli/) and the
// daemon (daemon/) sit side by side under the composition (main.ts,
// runtime.ts), and nothing below imports them or the composition; the edges
// import neither the bake nor the commands; errors/ imports nothing of the agent's.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.dirname(new URL(import.meta.url).pathname);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [p] : [];
  });
}

/** Each relative import of each source file (static and dynamic), as paths under agent/. */
function imports(): { from: string; to: string }[] {
  return sources(root).flatMap((file) => {
    const text = readFileSync(file, "utf8");
    const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1]!);
    return specs.map((s) => ({ from: path.relative(root, file), to: path.relative(root, path.resolve(path.dirname(file), s)) }));
  });
}

/** Who may import what: a target, and the importers allowed. */
const RULES: { target: (p: string) => boolean; name: string; allowed: (p: string) => boolean }[] = [
  { name: "cli/", target: (p) => p.startsWith("cli/"), allowed: (p) => p === "main.ts" || p.startsWith("cli/") },
  { name: "daemon/", target: (p) => p.startsWith("daemon/"), allowed: (p) => p === "main.ts" || p.startsWith("daemon/") },
  { name: "runtime.ts", target: (p) => p === "runtime.ts", allowed: (p) => p === "main.ts" || p.startsWith("cli/") || p.startsWith("daemon/") },
  { name: "main.ts", target: (p) => p === "main.ts", allowed: (p) => p === "entry.ts" },
];

const under = (...dirs: string[]) => (p: string) => dirs.some((d) => (d.endsWith("/") ? p.startsWith(d) : p === d));
/** The edges, each behind a port, and the pure code below them. */
const EDGES = under("credentials/", "docker/", "state/", "report/", "signatures/");
const BELOW_EDGES = under("spec/", "errors/", "net/", "config.ts", "log.ts", "clock.ts", "abort.ts", "io.ts", "version.ts", "node-env.ts");

/** What a layer must never import. */
const NEVER: { name: string; importer: (p: string) => boolean; forbidden: (p: string) => boolean }[] = [
  { name: "the edges and below", importer: (p) => EDGES(p) || BELOW_EDGES(p), forbidden: under("bake/", "cli/", "daemon/", "runtime.ts", "main.ts", "entry.ts") },
  { name: "the pure code below the edges", importer: BELOW_EDGES, forbidden: EDGES },
  { name: "errors/", importer: under("errors/"), forbidden: (p) => !p.startsWith("errors/") },
];

describe("which way dependencies point", () => {
  it("finds the imports it checks", () => {
    expect(imports()).toContainEqual({ from: "main.ts", to: "cli/bake-command.ts" });
  });

  it.each(RULES.map((r) => [r.name, r] as const))("only the layers above import %s", (_name, rule) => {
    const wrong = imports().filter((i) => rule.target(i.to) && !rule.allowed(i.from));
    expect(wrong).toEqual([]);
  });

  it.each(NEVER.map((r) => [r.name, r] as const))("%s: nothing above is imported", (_name, rule) => {
    const wrong = imports().filter((i) => rule.importer(i.from) && rule.forbidden(i.to));
    expect(wrong).toEqual([]);
  });
});
