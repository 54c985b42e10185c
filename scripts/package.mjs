// `npm run package`: the artifact a box installs. One tarball holding Node 24
// (the `node` devDependency's binary), the single-file agent, a launcher, the
// systemd unit and the installer; plus a .sha256 file the installer verifies.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, createReadStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
const nodeBin = path.join(root, "node_modules/node/bin/node");
const nodeVersion = execFileSync(nodeBin, ["--version"], { encoding: "utf8" }).trim();
if (!/^v24\./.test(nodeVersion)) throw new Error(`expected Node 24 in ${nodeBin}, found ${nodeVersion}`);

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
copyFileSync(path.join(root, "packer/scripts/install.sh"), path.join(stage, "share/install.sh"));
writeFileSync(
  path.join(stage, "bin/slothbox-agent"),
  '#!/bin/sh\n# Runs the agent on the Node that ships with it.\nhere=$(dirname "$(readlink -f "$0")")\nexec "$here/node" "$here/../lib/slothbox-agent.mjs" "$@"\n',
);
chmodSync(path.join(stage, "bin/slothbox-agent"), 0o755);
writeFileSync(path.join(stage, "VERSION"), `slothbox-agent ${pkg.version}\nnode ${nodeVersion}\n`);

const tarball = path.join(out, `${name}.tar.gz`);
rmSync(tarball, { force: true });
execFileSync("tar", ["-C", path.dirname(stage), "--owner=0", "--group=0", "--numeric-owner", "-czf", tarball, name]);
rmSync(path.join(out, "pkg"), { recursive: true, force: true });
const hash = createHash("sha256");
for await (const chunk of createReadStream(tarball)) hash.update(chunk);
const sum = hash.digest("hex");
writeFileSync(`${tarball}.sha256`, `${sum}  ${path.basename(tarball)}\n`);
console.log(`${path.relative(root, tarball) || tarball}\nsha256 ${sum}`);
