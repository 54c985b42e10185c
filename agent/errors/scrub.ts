// Removes every registered secret from text that leaves the process. A secret
// is registered the moment it is fetched, with each form registries, proxies,
// Docker and debug output echo it in:
// - as is, JSON-escaped (a GCR key holds quotes and newlines), with Go's JSON
//   escapes (\u0026 \u003c \u003e), and URL-encoded (%XX, and + for spaces);
// - base64 and base64url at each of the three byte offsets it can sit at inside
//   a longer encoded value (X-Registry-Auth is base64url of a JSON object with
//   the password inside; Basic auth is base64 of user:secret): the characters
//   that depend on the secret's bytes alone;
// - each line of a multi-line secret, and, in a secret that is a JSON object,
//   each string under a key that names a secret (a service-account key's
//   private_key and private_key_id, and each line of the PEM); its other strings
//   (client_email, token_uri) are not secret and are left alone.
//
// Short text, chosen rule: a form shorter than MIN_FORM (12) characters is not
// searched for in encoded or partial forms (it would match by chance), and a
// whole secret that short is replaced only where it stands alone — not inside a
// longer run of letters, digits or base64 characters — so a three-letter secret
// cannot corrupt a digest in the manifest. Registry secrets are far longer.
//
// Bounded: a daemon that runs for months registers new ECR tokens every few
// hours; the least recently registered secrets beyond MAX_SECRETS are forgotten
// (an SSM secret in use is registered again at each fetch, so it stays).

export const REDACTED = "[REDACTED]";
export const MIN_FORM = 12;
export const MAX_SECRETS = 256;

/** Characters that extend a token: a short secret next to one of these is part of something else. */
const TOKEN_CHAR = "A-Za-z0-9+/=_\\-";

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The base64 and base64url characters of `bytes` that do not depend on its neighbours, at each offset. */
function base64Cores(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
    const start = Math.ceil((offset * 8) / 6);
    const end = Math.floor((padded.length * 8) / 6);
    for (const enc of ["base64", "base64url"] as const) out.push(padded.toString(enc).slice(start, end));
  }
  return out;
}

const SECRET_KEY = /key|secret|token|password|credential/i;

/** The strings under secret-naming keys of a JSON value, at any depth. */
function secretStringsIn(value: unknown, out: string[] = [], underSecretKey = false): string[] {
  if (typeof value === "string") {
    if (underSecretKey) out.push(value);
  } else if (Array.isArray(value)) for (const v of value) secretStringsIn(v, out, underSecretKey);
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) secretStringsIn(v, out, underSecretKey || SECRET_KEY.test(k));
  }
  return out;
}

/** Every form of `secret` worth searching for. Pure, for the table test. */
export function secretForms(secret: string): { free: string[]; standalone: string[] } {
  const free = new Set<string>();
  const parts = new Set<string>([secret]);
  for (const line of secret.split(/\r?\n/)) parts.add(line.trim());
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    parsed = undefined;
  }
  for (const s of secretStringsIn(parsed)) {
    parts.add(s);
    for (const line of s.split(/\r?\n/)) parts.add(line.trim());
  }
  for (const p of parts) {
    if (p.length < MIN_FORM) continue;
    const json = JSON.stringify(p).slice(1, -1);
    const text = [p, json, json.replace(/[&<>\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)];
    // Encoded values carry the text as written inside them: a JSON body (X-Registry-Auth) holds the JSON-escaped form.
    for (const f of [...text, encodeURIComponent(p), encodeURIComponent(p).replace(/%20/g, "+"), ...text.flatMap((t) => base64Cores(Buffer.from(t)))]) {
      if (f.length >= MIN_FORM) free.add(f);
    }
  }
  const standalone = secret.length > 0 && secret.length < MIN_FORM ? [secret] : [];
  return { free: [...free], standalone };
}

export class Scrubber {
  /** secret → its forms, in registration order (the oldest first). */
  private readonly secrets = new Map<string, { free: string[]; standalone: string[] }>();
  /** The process's own tokens (API, control plane): never forgotten, however many registry secrets come and go. */
  private readonly pinned = new Map<string, { free: string[]; standalone: string[] }>();
  private matchers: RegExp[] | undefined;

  add(secret: string): void {
    if (!secret || this.pinned.has(secret)) return;
    const forms = this.secrets.get(secret) ?? secretForms(secret);
    this.secrets.delete(secret);
    this.secrets.set(secret, forms);
    while (this.secrets.size > MAX_SECRETS) this.secrets.delete(this.secrets.keys().next().value!);
    this.matchers = undefined;
  }

  /** A secret that lives as long as the process: outside the MAX_SECRETS bound. */
  pin(secret: string): void {
    if (!secret) return;
    this.pinned.set(secret, this.secrets.get(secret) ?? secretForms(secret));
    this.secrets.delete(secret);
    this.matchers = undefined;
  }

  /** How many registry secrets are registered (bounded by MAX_SECRETS), besides the pinned ones. */
  get size(): number {
    return this.secrets.size;
  }

  private compile(): RegExp[] {
    const free = new Set<string>();
    const standalone = new Set<string>();
    for (const f of [...this.pinned.values(), ...this.secrets.values()]) {
      f.free.forEach((x) => free.add(x));
      f.standalone.forEach((x) => standalone.add(x));
    }
    // Longest first, so that a secret containing another is removed whole.
    const alternation = (xs: Set<string>) => [...xs].sort((a, b) => b.length - a.length).map(escapeRegExp).join("|");
    const out: RegExp[] = [];
    if (free.size) out.push(new RegExp(alternation(free), "g"));
    if (standalone.size) out.push(new RegExp(`(?<![${TOKEN_CHAR}])(?:${alternation(standalone)})(?![${TOKEN_CHAR}])`, "g"));
    return out;
  }

  scrub(s: string): string {
    if (this.secrets.size === 0 && this.pinned.size === 0) return s;
    this.matchers ??= this.compile();
    let out = s;
    for (const re of this.matchers) out = out.replace(re, REDACTED);
    return out;
  }

  /** Deep copy of a JSON-like value with every string scrubbed. */
  scrubValue<T>(value: T): T {
    if (typeof value === "string") return this.scrub(value) as T;
    if (Array.isArray(value)) return value.map((v: unknown) => this.scrubValue(v)) as T;
    if (value && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.scrubValue(v);
      return out as T;
    }
    return value;
  }
}
