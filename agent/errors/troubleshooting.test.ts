// The operator's pages must not drift from the code table: every code in
// ERROR_CODES has its entry in docs/troubleshooting.md and its row in
// docs/reference.md §5, each saying the same about retrying as the table does.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, type ErrorCode } from "./codes.ts";

const doc = (name: string) => readFileSync(new URL(`../../docs/${name}`, import.meta.url), "utf8");
const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

/** The text under `## <code>` (backticks allowed) up to the next `## ` heading; undefined without one. */
function entry(page: string, code: string): string | undefined {
  const lines = page.split("\n");
  const start = lines.findIndex((l) => l.trim() === `## ${code}` || l.trim() === `## \`${code}\``);
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  return lines.slice(start + 1, end < 0 ? undefined : end).join("\n").trim();
}

describe("docs/troubleshooting.md", () => {
  const page = doc("troubleshooting.md");

  it.each(CODES)("has an entry for %s that says first whether it is retried, as the code table does", (code) => {
    const body = entry(page, code);
    expect(body, `docs/troubleshooting.md has no "## ${code}" entry`).toBeDefined();
    const first = body!.split("\n\n")[0]!;
    expect(first, `the first paragraph of "## ${code}" must open with *Retryable: yes.* or *Retryable: no.*`).toMatch(/^\*Retryable: (yes|no)\.\* \S/);
    expect(first.startsWith(`*Retryable: ${ERROR_CODES[code].retryable ? "yes" : "no"}.*`), `"## ${code}" says otherwise than codes.ts about retrying`).toBe(true);
    expect(body!.length, `"## ${code}" says too little to help anyone`).toBeGreaterThan(200);
  });
});

describe("docs/reference.md §5", () => {
  const section = doc("reference.md").split("\n## 5. ")[1]?.split("\n## ")[0] ?? "";

  it.each(CODES)("lists %s with the table's retryability", (code) => {
    const row = section.split("\n").find((l) => l.startsWith(`| \`${code}\` |`));
    expect(row, `docs/reference.md §5 has no row for ${code}`).toBeDefined();
    expect(row!.trim().endsWith(`| ${ERROR_CODES[code].retryable ? "yes" : "no"} |`)).toBe(true);
  });
});
