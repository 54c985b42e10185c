// Builds dist/slothbox-agent.mjs: one ESM file with every dependency inlined, so
// the box runs it with Node alone and starts fast (no module resolution).
import { build } from "esbuild";
import { chmodSync, readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

await build({
  entryPoints: ["agent/main.ts"],
  outfile: "dist/slothbox-agent.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  minifySyntax: true,
  minifyWhitespace: true,
  keepNames: true,
  legalComments: "none",
  // ssh2's optional native helpers (loaded in try/catch) are never used: the agent talks to a unix socket.
  external: ["cpu-features", "*.node"],
  define: { __AGENT_VERSION__: JSON.stringify(pkg.version) },
  banner: {
    // Some dependencies are CommonJS and use require() and __dirname; give them both.
    js: [
      "#!/usr/bin/env node",
      "import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path';",
      "const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);",
    ].join("\n"),
  },
  logLevel: "warning",
});
chmodSync("dist/slothbox-agent.mjs", 0o755);
