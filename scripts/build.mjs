// Builds dist/: an ESM entry (slothbox-agent.mjs) and chunks, every dependency
// inlined, so the box runs it with Node alone. Code that only some commands need
// (the AWS SDK, the daemon) sits in chunks loaded on first use, and dockerode's
// SSH and gRPC transports, which the agent never uses (it talks to a unix
// socket) and its BuildKit progress decoder, are replaced by stubs: start-up is
// a large share of a bake. The `debug` package is replaced by a silent one:
// with DEBUG=* docker-modem would print each request's options, X-Registry-Auth
// header included, straight to stderr, past the agent's scrubber.
import { build } from "esbuild";
import { chmodSync, readFileSync, rmSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

const UNUSED_TRANSPORTS = /^(ssh2|@grpc\/grpc-js|@grpc\/proto-loader|protobufjs)$/;
const stubUnused = {
  name: "stub-unused-transports",
  setup(b) {
    b.onResolve({ filter: UNUSED_TRANSPORTS }, (args) => ({ path: args.path, namespace: "stub" }));
    b.onLoad({ filter: /.*/, namespace: "stub" }, (args) => ({
      contents: `const fail = () => { throw new Error(${JSON.stringify(args.path + " is not bundled: slothbox-agent talks to Docker over a unix socket only")}); };
module.exports = { Client: class { constructor() { fail(); } }, Server: class { constructor() { fail(); } }, loadSync: fail, loadPackageDefinition: fail, ServerCredentials: { createInsecure: fail } };`,
      loader: "js",
    }));
  },
};

const silentDebug = {
  name: "silent-debug",
  setup(b) {
    b.onResolve({ filter: /^debug$/ }, () => ({ path: "debug", namespace: "silent-debug" }));
    b.onLoad({ filter: /.*/, namespace: "silent-debug" }, () => ({
      contents: `const create = () => Object.assign(() => undefined, { enabled: false, extend: create, log: () => undefined });
module.exports = Object.assign(create, { enable: () => undefined, disable: () => "", enabled: () => false, debug: create, default: create });`,
      loader: "js",
    }));
  },
};

rmSync("dist", { recursive: true, force: true });
await build({
  entryPoints: { "slothbox-agent": "agent/entry.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  // Prefer packages' ESM builds: dynamic imports of them keep their named exports.
  mainFields: ["module", "main"],
  target: "node22",
  minifySyntax: true,
  minifyWhitespace: true,
  keepNames: true,
  legalComments: "none",
  // Optional native helpers (loaded in try/catch by their packages) stay out.
  external: ["cpu-features", "*.node"],
  plugins: [stubUnused, silentDebug],
  define: { __AGENT_VERSION__: JSON.stringify(pkg.version) },
  banner: {
    // Some dependencies are CommonJS and use require() and __dirname; give them both.
    js: [
      "import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path';",
      "const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);",
    ].join("\n"),
  },
  logLevel: "warning",
});
// The shebang goes on the entry only (chunks are imported, not executed).
const entry = "dist/slothbox-agent.mjs";
const { writeFileSync } = await import("node:fs");
writeFileSync(entry, "#!/usr/bin/env node\n" + readFileSync(entry, "utf8"));
chmodSync(entry, 0o755);
