// Reading the --spec file for `bake`, `check-credential` and `verify`: a file that cannot
// be read, or that breaks docs/reference.md §2, is refused before anything is fetched.
import { readFile } from "node:fs/promises";
import type { Scrubber } from "../errors/scrub.ts";
import { foreignText } from "../errors/foreign-text.ts";
import type { Io } from "../io.ts";
import { parseSpecText, type BakeSpec, type Violation } from "../spec/schema.ts";
import { secretUsernames } from "../spec/username.ts";

export type SpecFile =
  | { ok: true; spec: BakeSpec }
  /** `readError` when the file could not be read; `bakeId` when the text names one. */
  | { ok: false; bakeId: string | null; violations: Violation[]; readError?: string };

function bakeIdOf(text: string): string | null {
  try {
    const v = JSON.parse(text) as { bakeId?: unknown };
    return typeof v?.bakeId === "string" ? v.bakeId : null;
  } catch {
    return null;
  }
}

export async function readSpecFile(file: string, ssmParameterPrefix: string): Promise<SpecFile> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const readError = `cannot read spec ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    return { ok: false, bakeId: null, violations: [{ path: "", code: "spec_invalid", message: readError }], readError };
  }
  const parsed = parseSpecText(text, { ssmParameterPrefix });
  return parsed.ok ? parsed : { ok: false, bakeId: bakeIdOf(text), violations: parsed.violations };
}

/**
 * One line per violation: path, code, message, for a terminal. A message quotes
 * the offending value and an unknown key is its path: both pass foreignText.
 */
export function violationLines(violations: Violation[]): string[] {
  return violations.map((v) => `  ${foreignText(v.path) || "(root)"}: ${v.code}: ${foreignText(v.message)}`);
}

/**
 * The spec of a troubleshooting command (`check-credential`, `verify`): read and valid,
 * its secret usernames known to the scrubber; or undefined once why not is on stderr.
 */
export async function specForCommand(file: string, ssmParameterPrefix: string, scrubber: Scrubber, io: Io): Promise<BakeSpec | undefined> {
  const parsed = await readSpecFile(file, ssmParameterPrefix);
  if (!parsed.ok) {
    if (parsed.readError) io.stderr(`error: ${parsed.readError}`);
    else {
      io.stderr(`error: the bake spec ${file} is invalid:`);
      for (const line of violationLines(parsed.violations)) io.stderr(line);
    }
    return undefined;
  }
  for (const u of secretUsernames(parsed.spec)) scrubber.add(u);
  return parsed.spec;
}
