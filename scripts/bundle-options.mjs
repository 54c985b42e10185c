// How the agent is bundled (scripts/build.mjs), shared with the bench's floors
// (test/bench/cpu-ab.ts), which must load their libraries as the agent does:
// every dependency inlined, so the box runs it with Node alone; dockerode's
// SSH and gRPC transports, which the agent never uses (it talks to a unix
// socket) and its BuildKit progress decoder, are replaced by stubs: start-up is
// a large share of a bake. The `debug` package is replaced by a silent one:
// with DEBUG=* docker-modem would print each request's options, X-Registry-Auth
// header included, straight to stderr, past the agent's scrubber.

/**
 * A plugin that gives the bundle `contents(path)` (JavaScript) in place of a module
 * whose name matches `filter`, where `when(args)` says so (every import by default).
 */
const replaceModule = ({ name, filter, when = () => true, contents }) => ({
  name,
  setup(b) {
    // One module per name, however it is written (`http`, `node:http`).
    b.onResolve({ filter }, (args) => (when(args) ? { path: args.path.replace(/^node:/, ""), namespace: name } : undefined));
    b.onLoad({ filter: /.*/, namespace: name }, async (args) => ({ contents: await contents(args.path), loader: "js" }));
  },
});

const stubUnused = replaceModule({
  name: "stub-unused-transports",
  filter: /^(ssh2|@grpc\/grpc-js|@grpc\/proto-loader|protobufjs)$/,
  contents: (path) => `const fail = () => { throw new Error(${JSON.stringify(path + " is not bundled: slothbox-agent talks to Docker over a unix socket only")}); };
module.exports = { Client: class { constructor() { fail(); } }, Server: class { constructor() { fail(); } }, loadSync: fail, loadPackageDefinition: fail, ServerCredentials: { createInsecure: fail } };`,
});

// prom-client reads the current OpenTelemetry span only for exemplars, which the
// agent never enables; the API package it loads for that would be parsed and run
// in every daemon.
const noOpenTelemetry = replaceModule({
  name: "no-opentelemetry",
  filter: /^@opentelemetry\/api$/,
  contents: () => `module.exports = new Proxy({}, { get() { throw new Error("@opentelemetry/api is not bundled: slothbox-agent's metrics have no exemplars"); } });`,
});

const silentDebug = replaceModule({
  name: "silent-debug",
  filter: /^debug$/,
  contents: () => `const create = () => Object.assign(() => undefined, { enabled: false, extend: create, log: () => undefined });
module.exports = Object.assign(create, { enable: () => undefined, disable: () => "", enabled: () => false, debug: create, default: create });`,
});

// node:http through require(), never an ESM import: an ESM import of a builtin
// reads every one of its exports, and node:http's lazy WebSocket, CloseEvent and
// MessageEvent getters then load undici's WebSocket client: +14 MB of RSS in the
// idle daemon (measured: 59.7 MB against 45 MB for a bare `import "node:http"`).
// The agent never uses them; every other export is passed on as it is.
const HTTP_LAZY = new Set(["WebSocket", "CloseEvent", "MessageEvent"]);
const httpViaRequire = replaceModule({
  name: "http-via-require",
  filter: /^(node:)?http$/,
  // CommonJS dependencies' require("http") already is one.
  when: (args) => args.kind !== "require-call",
  contents: async () => {
    const { createRequire } = await import("node:module");
    const names = Object.keys(createRequire(import.meta.url)("node:http")).filter((k) => !HTTP_LAZY.has(k) && k !== "default");
    return [
      `import { createRequire } from "node:module";`,
      `const http = createRequire(import.meta.url)("node:http");`,
      `export default http;`,
      ...names.map((n) => `export const ${n} = http.${n};`),
    ].join("\n");
  },
});

// docker-modem (for Docker hosts over TLS) and prom-client (for its Pushgateway)
// require node:https when they load; the agent uses neither (a unix socket; a
// scrape), and loading https (and tls with it) costs the idle daemon 5.5 MB of
// RSS (measured). They get a stand-in that loads https on first use, so either
// still works if used. The AWS SDK, which does use it, loads it itself.
const lazyHttps = replaceModule({
  name: "lazy-https",
  filter: /^(node:)?https$/,
  when: (args) => args.kind === "require-call" && /[\\/](docker-modem|prom-client)[\\/]/.test(args.importer),
  contents: () => `let https;
const load = () => (https ??= require("node:https"));
module.exports = new Proxy({}, {
  get: (_, k) => load()[k],
  has: (_, k) => k in load(),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, k) => ({ ...Object.getOwnPropertyDescriptor(load(), k), configurable: true }),
});`,
});

/** esbuild's options for any bundle of the agent's code: what to inline, stub or leave out, and for which Node. */
export const bundleOptions = {
  bundle: true,
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
  plugins: [stubUnused, noOpenTelemetry, silentDebug, httpViaRequire, lazyHttps],
  banner: {
    // Some dependencies are CommonJS and use require() and __dirname; give them both.
    js: [
      "import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path';",
      "const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);",
    ].join("\n"),
  },
  logLevel: "warning",
};
