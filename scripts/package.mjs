// `npm run package`: the artifacts a box installs. One tarball per architecture
// (linux-x64 and linux-arm64 for Graviton), each holding Node 24 for it (the
// binary of the `node-linux-<arch>` package, pinned with its integrity hash in
// package-lock.json, so a box runs exactly the Node that was reviewed), the
// agent, a launcher, the systemd units and the installer; plus a .sha256 file
// the installer verifies. `--arch x64|arm64` builds one only; `--out DIR`
// writes elsewhere than dist/.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

const ARCHES = ["x64", "arm64"];
const root = path.resolve(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
/** Node flags the launcher gives `slothbox-agent daemon` (the bench runs the daemon with the same). */
const DAEMON_NODE_FLAGS = JSON.parse(readFileSync(path.join(root, "scripts/daemon-node-flags.json"), "utf8"));
/** Node flags the launcher gives every other command, `bake` on the Packer path above all (npm run bench runs the CLI with the same). */
const CLI_NODE_FLAGS = JSON.parse(readFileSync(path.join(root, "scripts/cli-node-flags.json"), "utf8"));
// The flags are written into a shell script unquoted: only plain `--name=value` words.
for (const flag of [...DAEMON_NODE_FLAGS, ...CLI_NODE_FLAGS]) {
  if (!/^--[\w.=-]+$/.test(flag)) throw new Error(`scripts/*-node-flags.json: ${JSON.stringify(flag)} is not a plain --flag[=value]`);
}
const lockPackages = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8")).packages;

const { values } = parseArgs({ options: { out: { type: "string" }, arch: { type: "string", multiple: true } } });
const arches = values.arch ?? ARCHES;
for (const a of arches) if (!ARCHES.includes(a)) throw new Error(`--arch ${a}: expected one of ${ARCHES.join(", ")}`);
// A test that packages for itself (test/systemd/nspawn.ts) must not race another
// test file rewriting dist/ at the same time.
const out = values.out ? path.resolve(values.out) : path.join(root, "dist");

const sha512Integrity = (file) => "sha512-" + createHash("sha512").update(readFileSync(file)).digest("base64");

/**
 * The Node binary for `arch`, checked against package-lock.json. The machine's own
 * architecture is in node_modules (npm ci checked its integrity); the other one
 * npm skips as a platform mismatch, so its registry tarball is fetched with
 * `npm pack` and checked here against the lockfile's integrity before use.
 */
function nodeBinary(arch, scratch) {
  const name = `node-linux-${arch}`;
  const lock = lockPackages[`node_modules/${name}`];
  if (!lock?.integrity) throw new Error(`${name} is not pinned in package-lock.json; run npm install`);
  const installed = path.join(root, "node_modules", name);
  if (existsSync(path.join(installed, "package.json"))) {
    const version = JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8")).version;
    if (version !== lock.version) throw new Error(`${name} ${version} in node_modules does not match package-lock.json (${lock.version}); run npm ci`);
    return { bin: path.join(installed, "bin/node"), lock };
  }
  const dir = path.join(scratch, name);
  mkdirSync(dir);
  execFileSync("npm", ["pack", `${name}@${lock.version}`, "--ignore-scripts", "--prefer-offline", "--silent", "--pack-destination", dir], { cwd: scratch, stdio: ["ignore", "ignore", "inherit"] });
  const tgz = path.join(dir, readdirSync(dir).find((f) => f.endsWith(".tgz")));
  const integrity = sha512Integrity(tgz);
  if (integrity !== lock.integrity) throw new Error(`${name}@${lock.version} from the registry has integrity ${integrity}, package-lock.json pins ${lock.integrity}; refusing it`);
  execFileSync("tar", ["-xzf", tgz, "-C", dir, "package/bin/node"]);
  return { bin: path.join(dir, "package/bin/node"), lock };
}

/** The version a Node binary says it is, without running a binary of another architecture. */
function nodeVersionOf(arch, bin) {
  if (arch === process.arch) return execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
  return undefined;
}

async function packageFor(arch, scratch) {
  const { bin: nodeBin, lock } = nodeBinary(arch, scratch);
  const nodeVersion = nodeVersionOf(arch, nodeBin) ?? `v${lock.version}`;
  if (nodeVersion !== `v${lock.version}`) throw new Error(`expected Node v${lock.version} in ${nodeBin}, found ${nodeVersion}`);

  const name = `slothbox-agent-${pkg.version}-linux-${arch}`;
  const stage = path.join(scratch, "pkg", name);
  for (const d of ["bin", "lib", "share"]) mkdirSync(path.join(stage, d), { recursive: true });
  copyFileSync(nodeBin, path.join(stage, "bin/node"));
  chmodSync(path.join(stage, "bin/node"), 0o755);
  cpSync(path.join(root, "dist/slothbox-agent.mjs"), path.join(stage, "lib/slothbox-agent.mjs"));
  cpSync(path.join(root, "dist/chunks"), path.join(stage, "lib/chunks"), { recursive: true });
  for (const unit of ["slothbox-agent.service", "slothbox-agent.path", "slothbox-agent-preflight.service"]) copyFileSync(path.join(root, "systemd", unit), path.join(stage, "share", unit));
  copyFileSync(path.join(root, "packer/scripts/install.sh"), path.join(stage, "share/install.sh"));
  writeFileSync(
    path.join(stage, "bin/slothbox-agent"),
    [
      "#!/bin/sh",
      "# Runs the agent on the Node that ships with it. NODE_DEBUG=net would print each AWS",
      "# request's signed headers and NODE_OPTIONS can load any code into the agent: both",
      "# are dropped; NODE_EXTRA_CA_CERTS (a private CA) is kept.",
      "unset NODE_DEBUG NODE_OPTIONS",
      'here=$(dirname "$(readlink -f "$0")")',
      "# The daemon runs for months and waits on I/O: V8 without its optimizing tiers holds",
      "# 16 MB less once a bake has run, for no more CPU per bake (docs/benchmarks.md).",
      `[ "\${1:-}" = daemon ] && exec "$here/node" ${DAEMON_NODE_FLAGS.join(" ")} "$here/../lib/slothbox-agent.mjs" "$@"`,
      "# Every other command lives for seconds (a bake on the Packer path above all): a young",
      "# generation that starts at 16 MB spares it most of its scavenges, 4-5 % of a bake's CPU",
      "# (docs/benchmarks.md).",
      `exec "$here/node" ${CLI_NODE_FLAGS.join(" ")} "$here/../lib/slothbox-agent.mjs" "$@"`,
      "",
    ].join("\n"),
  );
  chmodSync(path.join(stage, "bin/slothbox-agent"), 0o755);
  // install.sh reads ARCH before it unpacks anything else: a package for another machine is refused in one sentence.
  writeFileSync(path.join(stage, "ARCH"), `linux-${arch}\n`);
  const nodeSha256 = createHash("sha256").update(readFileSync(nodeBin)).digest("hex");
  writeFileSync(
    path.join(stage, "VERSION"),
    `slothbox-agent ${pkg.version} linux-${arch}\nnode ${nodeVersion} (npm node-linux-${arch}@${lock.version} ${lock.integrity}; bin/node sha256 ${nodeSha256})\n`,
  );

  const tarball = path.join(out, `${name}.tar.gz`);
  // One package per architecture in the directory: Packer's template picks this one by its architecture, and an older version beside it would be ambiguous.
  for (const f of readdirSync(out)) if (new RegExp(`^slothbox-agent-.+-linux-${arch}\\.tar\\.gz(\\.sha256)?$`).test(f)) rmSync(path.join(out, f), { force: true });
  execFileSync("tar", ["-C", path.dirname(stage), "--owner=0", "--group=0", "--numeric-owner", "-czf", tarball, name]);
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(tarball)) hash.update(chunk);
  const sum = hash.digest("hex");
  writeFileSync(`${tarball}.sha256`, `${sum}  ${path.basename(tarball)}\n`);
  console.log(`${path.relative(root, tarball) || tarball}\nsha256 ${sum}`);
}

mkdirSync(out, { recursive: true });
const scratch = mkdtempSync(path.join(os.tmpdir(), "slothbox-package-"));
try {
  for (const arch of arches) await packageFor(arch, scratch);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
