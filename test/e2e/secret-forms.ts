// The forms a leaked secret can take in text, listed here on their own and
// never taken from the agent's scrubber (agent/errors/scrub.ts): a checker that
// searched for the scrubber's forms could only ever find what the scrubber
// already removes. Each form is one a real path produces:
// - raw, and each line of a multi-line secret (a PEM key);
// - JSON-escaped once (a log line, an event) and twice (a JSON document logged
//   inside a JSON string), also with Go's \u0026 \u003c \u003e escapes (dockerd);
// - percent-encoded: encodeURIComponent, Go's url.QueryEscape and
//   url.PathEscape (registries and dockerd are Go), upper- and lower-case hex;
// - base64 and base64url at each of the three byte offsets (Basic auth is
//   base64 of user:secret, X-Registry-Auth base64url of a JSON body), of the raw
//   and the JSON-escaped secret: the characters that depend on its bytes alone;
// - hex, upper- and lower-case, and as Node prints a Buffer (`7b 22 75`);
// - UTF-16LE (a Windows-side tool, a JavaScript string dumped as bytes).
// Text is searched as written and with its line breaks taken out, so that
// base64 or hex wrapped at 76 or 64 columns (MIME, PEM, hex dumps) is found too.

/** Forms shorter than this would match by chance; the secret itself is searched for whatever its length. */
const MIN_FORM = 12;

const json = (s: string) => JSON.stringify(s).slice(1, -1);
const goJson = (s: string) => json(s).replace(/[&<>]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);

/** Go's url.QueryEscape: only A-Z a-z 0-9 - _ . ~ stay; a space is +. */
const goQueryEscape = (s: string) =>
  encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+");

/** Go's url.PathEscape: as QueryEscape, but $ & + : = @ stay and a space is %20. */
const goPathEscape = (s: string) =>
  goQueryEscape(s)
    .replace(/\+/g, "%20")
    .replace(/%(24|26|2B|3A|3D|40)/g, (x) => decodeURIComponent(x));

const lowerHexEscapes = (s: string) => s.replace(/%[0-9A-F]{2}/g, (x) => x.toLowerCase());

/** The characters of base64(prefix + text) that depend on `text` alone, for each prefix length mod 3. */
function base64Inner(text: string): string[] {
  const out: string[] = [];
  const bytes = Buffer.from(text);
  for (let pre = 0; pre < 3; pre++) {
    const whole = Buffer.concat([Buffer.alloc(pre, 0xff), bytes]);
    for (const enc of ["base64", "base64url"] as const) {
      const s = whole.toString(enc);
      out.push(s.slice(Math.ceil((pre * 4) / 3), Math.floor(((pre + bytes.length) * 4) / 3)));
    }
  }
  return out;
}

export function leakForms(secret: string): string[] {
  const forms = new Set<string>([secret]);
  for (const line of secret.split(/\r?\n/)) forms.add(line.trim());
  const texts = [secret, json(secret), json(json(secret)), goJson(secret), json(goJson(secret))];
  for (const t of texts) forms.add(t);
  for (const url of [encodeURIComponent(secret), encodeURIComponent(secret).replace(/%20/g, "+"), goQueryEscape(secret), goPathEscape(secret)]) {
    forms.add(url);
    forms.add(lowerHexEscapes(url));
  }
  for (const t of [secret, json(secret)]) for (const b of base64Inner(t)) forms.add(b);
  const hex = Buffer.from(secret).toString("hex");
  forms.add(hex);
  forms.add(hex.toUpperCase());
  forms.add(hex.replace(/(..)(?!$)/g, "$1 "));
  forms.add(Buffer.from(secret, "utf16le").toString("latin1"));
  return [...forms].filter((f) => f.length >= MIN_FORM || f === secret);
}

/** The text as written, and with line breaks (real, or JSON-escaped) taken out: wrapped encodings joined. */
export function searchableViews(text: string): string[] {
  return [text, text.replace(/\r?\n[ \t]*/g, ""), text.replace(/(?:\\r)?\\n[ \t]*/g, "")];
}

/** The forms of `secret` found in `text`. */
export function leaksIn(text: string, secret: string, forms = leakForms(secret)): string[] {
  const views = searchableViews(text);
  return forms.filter((f) => views.some((v) => v.includes(f)));
}
