// The artifact a box installs (`npm run package`: Node 24, the agent, the unit,
// install.sh), made into a private directory so no other test file that
// packages into dist/ at the same time can change it under us.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { ROOT } from "../e2e/harness.ts";

const execFileP = promisify(execFile);

/** Bundling and packaging take ~6 s here; a loaded machine gets ample headroom. */
const PACKAGE_TIMEOUT_MS = 180_000;

export interface AgentPackage {
  tarball: string;
  sha256File: string;
  /** The installer the Packer template uploads beside the tarball (packer/scripts/install.sh). */
  installScript: string;
  cleanup(): void;
}

/**
 * Packages the built agent (`npm test` builds it first; a missing bundle is
 * built here). `scripts/package.mjs --out DIR` is `npm run package` minus the build.
 */
export async function packageAgent(workRoot = "/var/tmp"): Promise<AgentPackage> {
  if (!existsSync(path.join(ROOT, "dist/slothbox-agent.mjs"))) {
    await execFileP(process.execPath, [path.join(ROOT, "scripts/build.mjs")], { cwd: ROOT, timeout: PACKAGE_TIMEOUT_MS });
  }
  const dir = mkdtempSync(path.join(workRoot, "slothbox-pkg-"));
  try {
    await execFileP(process.execPath, [path.join(ROOT, "scripts/package.mjs"), "--arch", "x64", "--out", dir], { cwd: ROOT, timeout: PACKAGE_TIMEOUT_MS });
    const tarball = readdirSync(dir).find((f) => /^slothbox-agent-.+-linux-x64\.tar\.gz$/.test(f));
    if (!tarball) throw new Error(`scripts/package.mjs made no tarball in ${dir}`);
    return {
      tarball: path.join(dir, tarball),
      sha256File: path.join(dir, `${tarball}.sha256`),
      installScript: path.join(ROOT, "packer/scripts/install.sh"),
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
