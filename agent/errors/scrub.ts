// Removes every registered secret from strings that leave the process. A secret
// is registered the moment it is fetched, in each form it could take in output:
// raw, JSON-escaped (a GCR key holds quotes and newlines), and base64.

export const REDACTED = "[REDACTED]";

export class Scrubber {
  private readonly forms = new Set<string>();

  add(secret: string): void {
    if (!secret) return;
    const variants = [
      secret,
      JSON.stringify(secret).slice(1, -1),
      Buffer.from(secret).toString("base64"),
      Buffer.from(secret).toString("base64url"),
    ];
    for (const v of variants) if (v.length > 0) this.forms.add(v);
  }

  /** Registered forms, longest first, so that a secret containing another is removed whole. */
  private ordered(): string[] {
    return [...this.forms].sort((a, b) => b.length - a.length);
  }

  scrub(s: string): string {
    if (this.forms.size === 0) return s;
    let out = s;
    for (const f of this.ordered()) out = out.split(f).join(REDACTED);
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
