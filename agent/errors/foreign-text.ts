// Text that comes from outside — Docker's messages, a registry's words, AWS's —
// is shown to a person on a terminal, in Packer's line-by-line log and in the
// journal. A registry must not be able to forge a log line or drive the
// terminal: escape sequences (ANSI CSI/OSC), control characters and bidi
// overrides are removed, and line breaks become "; " (after a line ending in
// ":" a space), so that Docker's "errors:\ndenied: …\nunauthorized: …" stays
// one readable line.

// CSI (ESC [ … final), OSC (ESC ] … BEL or ESC \), and two-character escapes.
// eslint-disable-next-line no-control-regex -- finding control characters is what this module is for
const ESCAPES = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/g;
// C0 and C1 controls (tab and line breaks are handled apart) and Unicode bidi overrides.
// eslint-disable-next-line no-control-regex -- as above
const CONTROLS = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

export function foreignText(s: string): string {
  const lines = s
    .replace(ESCAPES, "")
    .replace(/\t/g, " ")
    .split(/\r\n|\r|\n/)
    .map((l) => l.replace(CONTROLS, "").trim())
    .filter((l) => l.length > 0);
  return lines.reduce((out, l) => (out === "" ? l : out.endsWith(":") ? `${out} ${l}` : `${out}; ${l}`), "");
}
