// Builds dist/: an ESM entry (slothbox-agent.mjs) and chunks (scripts/bundle-options.mjs
// says what is inlined, stubbed and left out). Code that only some commands need
// (the AWS SDK, the daemon) sits in chunks loaded on first use: start-up is a
// large share of a bake.
import { build } from "esbuild";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { bundleOptions } from "./bundle-options.mjs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

rmSync("dist", { recursive: true, force: true });
await build({
  ...bundleOptions,
  entryPoints: { "slothbox-agent": "agent/entry.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  splitting: true,
  define: { __AGENT_VERSION__: JSON.stringify(pkg.version) },
});
// The shebang goes on the entry only (chunks are imported, not executed).
const entry = "dist/slothbox-agent.mjs";
writeFileSync(entry, "#!/usr/bin/env node\n" + readFileSync(entry, "utf8"));
chmodSync(entry, 0o755);
