// Removes every registered secret from text that leaves the process. A secret
// is registered the moment it is fetched, with each form registries, proxies,
// Docker and debug output echo it in:
// - as is, JSON-escaped once and twice (a GCR key holds quotes and newlines; a
//   JSON document logged inside a JSON string is escaped twice), with Go's JSON
//   escapes (\u0026 \u003c \u003e);
// - percent-encoded the ways JavaScript and Go do it (encodeURIComponent, Go's
//   url.QueryEscape and url.PathEscape, which also escape !'()*), a space as
//   %20 or +, with upper- or lower-case hex digits;
// - base64 and base64url at each of the three byte offsets it can sit at inside
//   a longer encoded value (X-Registry-Auth is base64url of a JSON object with
//   the password inside; Basic auth is base64 of user:secret): the characters
//   that depend on the secret's bytes alone; and hex, upper- and lower-case;
// - any of those encodings wrapped over several lines (MIME base64 at 76
//   columns, PEM at 64, hex dumps): runs of encoding characters broken only by
//   line ends are searched as if joined;
// - each line of a multi-line secret, and, in a secret that is a JSON object,
//   each string under a key that names a secret (a service-account key's
//   private_key and private_key_id, and each line of the PEM); its other strings
//   (client_email, token_uri) are not secret and are left alone.
//
// Short text, chosen rule: a form shorter than MIN_FORM (12) characters is not
// searched for in encoded or partial forms (it would match by chance), and a
// whole secret that short is replaced only where it stands alone — not inside a
// longer run of letters, digits or base64 characters — so a three-letter secret
// cannot corrupt a digest in the manifest. Registry secrets are far longer. An
// `=` before it does not join it to a run (`password=hunter2xyz`): base64 has
// `=` only at its end.
//
// By shape, whatever was registered: the value of a SigV4 `Signature=`, of an
// `x-amz-security-token`, `x-aws-ec2-metadata-token` or `X-Registry-Auth` header
// or query parameter — with the request they belong to, anyone who reads them
// could replay it (NODE_DEBUG prints each request's headers).
//
// Bounded: a daemon that runs for months registers new ECR tokens every few
// hours; the least recently registered secrets beyond MAX_SECRETS are forgotten
// (a secret in use is registered again at each fetch and each cache hit, so it
// stays). The instance role's credentials are kept apart, the last
// MAX_ROLE_SESSIONS sessions' worth: registry secrets never push them out.

export const REDACTED = "[REDACTED]";
export const MIN_FORM = 12;
export const MAX_SECRETS = 256;
/** Sessions of the instance role remembered: IMDS hands out new credentials about hourly, each valid for hours more. */
export const MAX_ROLE_SESSIONS = 8;

/** Characters that extend a token: a short secret next to one of these is part of something else. */
const TOKEN_CHAR = "A-Za-z0-9+/=_\\-";
/** Before a token: `=` ends base64, so it never joins what follows it to a run. */
const TOKEN_CHAR_BEFORE = "A-Za-z0-9+/_\\-";

/** A run of base64, base64url or hex characters broken over lines (one line of them at least 16 long). */
const WRAPPED_RUN = /(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/=_-]+(?:\r?\n[ \t]*[A-Za-z0-9+/=_-]+)+/g;
const LONG_LINE = /[A-Za-z0-9+/=_-]{16}/;
const LINE_BREAK = /\r?\n[ \t]*/g;

/** Values that are secret by where they stand, registered or not: the name (kept) and the value (removed). */
const SHAPES: RegExp[] = [
  /(\bSignature=)[0-9a-fA-F]{64}(?![0-9a-fA-F])/g,
  /((?:x-amz-security-token|x-aws-ec2-metadata-token|x-registry-auth)\\?["']?\s*[:=,]\s*\\?["']?)[A-Za-z0-9+/=%_-]+/gi,
];

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Percent-encoding of `s`'s UTF-8 bytes, every byte escaped but those in `safe`. */
function percentEncode(s: string, safe: RegExp, space: string, lowerHex: boolean): string {
  let out = "";
  for (const b of Buffer.from(s)) {
    const c = String.fromCharCode(b);
    if (b < 0x80 && safe.test(c)) out += c;
    else if (b === 0x20) out += space;
    else {
      const hex = b.toString(16).padStart(2, "0");
      out += `%${lowerHex ? hex : hex.toUpperCase()}`;
    }
  }
  return out;
}

/** The percent-encodings in use: encodeURIComponent, Go's url.QueryEscape (RFC 3986's unreserved set) and url.PathEscape. */
function percentForms(s: string): string[] {
  const out: string[] = [];
  for (const lowerHex of [false, true]) {
    for (const [safe, spaces] of [
      [/[A-Za-z0-9\-_.!~*'()]/, ["%20", "+"]],
      [/[A-Za-z0-9\-_.~]/, ["+", "%20"]],
      [/[A-Za-z0-9\-_.~$&+:=@]/, ["%20"]],
    ] as const) {
      for (const space of spaces) out.push(percentEncode(s, safe, space, lowerHex));
    }
  }
  return out;
}

/** JSON string escaping, without the quotes. */
const jsonEscape = (s: string) => JSON.stringify(s).slice(1, -1);
/** Go's encoding/json also escapes & < > and the two JavaScript line separators. */
const goJsonEscape = (s: string) => jsonEscape(s).replace(/[&<>\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

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
function secretForms(secret: string): { free: string[]; standalone: string[] } {
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
    const text = [p, jsonEscape(p), goJsonEscape(p)];
    const bytes = Buffer.from(p);
    // Encoded values carry the text as written inside them: a JSON body (X-Registry-Auth) holds the JSON-escaped form.
    for (const f of [
      ...text,
      jsonEscape(jsonEscape(p)),
      jsonEscape(goJsonEscape(p)),
      ...percentForms(p),
      ...text.flatMap((t) => base64Cores(Buffer.from(t))),
      bytes.toString("hex"),
      bytes.toString("hex").toUpperCase(),
    ]) {
      if (f.length >= MIN_FORM) free.add(f);
    }
  }
  const standalone = secret.length > 0 && secret.length < MIN_FORM ? [secret] : [];
  return { free: [...free], standalone };
}

type Forms = { free: string[]; standalone: string[] };

/** Secrets and their forms, the least recently registered forgotten beyond `max`. */
class SecretPool {
  /** secret → its forms, in registration order (the oldest first). */
  readonly secrets = new Map<string, Forms>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  /** True when what is searched for changed (a new secret, or one forgotten). */
  add(secret: string): boolean {
    const known = this.secrets.get(secret);
    this.secrets.delete(secret);
    this.secrets.set(secret, known ?? secretForms(secret));
    // Registered again (a cache hit, the role's credentials on each request): only its place in the order changes.
    if (known) return false;
    while (this.secrets.size > this.max) this.secrets.delete(this.secrets.keys().next().value!);
    return true;
  }
}

export interface RoleCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export class Scrubber {
  private readonly registry = new SecretPool(MAX_SECRETS);
  /** The instance role's credentials: apart, so that registry secrets, however many, cannot push them out. */
  private readonly role = new SecretPool(MAX_ROLE_SESSIONS * 3);
  /** The process's own tokens (API, control plane): never forgotten, however many registry secrets come and go. */
  private readonly pinned = new Map<string, Forms>();
  private matchers: { free?: RegExp; standalone?: RegExp } | undefined;

  add(secret: string): void {
    if (!secret || this.pinned.has(secret)) return;
    if (this.registry.add(secret)) this.matchers = undefined;
  }

  /** The instance role's key id, secret key and session token, as the SDK resolved them (again at each refresh). */
  addRoleCredentials(c: RoleCredentials): void {
    for (const secret of [c.accessKeyId, c.secretAccessKey, c.sessionToken]) {
      if (secret && !this.pinned.has(secret) && this.role.add(secret)) this.matchers = undefined;
    }
  }

  /** A secret that lives as long as the process: outside the MAX_SECRETS bound. */
  pin(secret: string): void {
    if (!secret) return;
    this.pinned.set(secret, this.registry.secrets.get(secret) ?? secretForms(secret));
    this.registry.secrets.delete(secret);
    this.matchers = undefined;
  }

  /** How many registry secrets are registered (bounded by MAX_SECRETS), besides the pinned ones. */
  get size(): number {
    return this.registry.secrets.size;
  }

  private compile(): { free?: RegExp; standalone?: RegExp } {
    const free = new Set<string>();
    const standalone = new Set<string>();
    for (const f of [...this.pinned.values(), ...this.role.secrets.values(), ...this.registry.secrets.values()]) {
      f.free.forEach((x) => free.add(x));
      f.standalone.forEach((x) => standalone.add(x));
    }
    // Longest first, so that a secret containing another is removed whole.
    const alternation = (xs: Set<string>) => [...xs].sort((a, b) => b.length - a.length).map(escapeRegExp).join("|");
    return {
      ...(free.size ? { free: new RegExp(alternation(free), "g") } : {}),
      ...(standalone.size ? { standalone: new RegExp(`(?<![${TOKEN_CHAR_BEFORE}])(?:${alternation(standalone)})(?![${TOKEN_CHAR}])`, "g") } : {}),
    };
  }

  scrub(s: string): string {
    let out = s;
    for (const re of SHAPES) out = out.replace(re, `$1${REDACTED}`);
    if (this.registry.secrets.size === 0 && this.role.secrets.size === 0 && this.pinned.size === 0) return out;
    const { free, standalone } = (this.matchers ??= this.compile());
    if (free) out = out.replace(free, REDACTED);
    if (standalone) out = out.replace(standalone, REDACTED);
    if (!free) return out;
    return out.replace(WRAPPED_RUN, (run) => (LONG_LINE.test(run) ? unwrapAndScrub(run, free) : run));
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

/**
 * Searches a run broken over lines as if it were joined, and removes what
 * matches from the run as written: line ends inside a removed form go with it,
 * those outside stay.
 */
function unwrapAndScrub(run: string, free: RegExp): string {
  // Where each character of the joined text stands in the run.
  const at: number[] = [];
  let joined = "";
  let last = 0;
  // exec loops, not matchAll: matchAll would compile a copy of the (large) regex on every call.
  LINE_BREAK.lastIndex = 0;
  for (let m = LINE_BREAK.exec(run); m; m = LINE_BREAK.exec(run)) {
    for (let i = last; i < m.index; i++) at.push(i);
    joined += run.slice(last, m.index);
    last = m.index + m[0].length;
  }
  for (let i = last; i < run.length; i++) at.push(i);
  joined += run.slice(last);
  let out = "";
  let from = 0;
  free.lastIndex = 0;
  for (let m = free.exec(joined); m; m = free.exec(joined)) {
    const start = at[m.index]!;
    const end = at[m.index + m[0].length - 1]! + 1;
    out += run.slice(from, start) + REDACTED;
    from = end;
  }
  return from === 0 ? run : out + run.slice(from);
}
