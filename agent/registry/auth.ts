// The registry's answer to an unauthenticated request (RFC 7235 WWW-Authenticate),
// as the distribution token spec and Docker Hub, GHCR, Quay and ECR send it:
// `Bearer realm="…",service="…",scope="…"` (a token to fetch, then retry) or
// `Basic realm="…"` (ECR: user `AWS`, the GetAuthorizationToken password).
// https://distribution.github.io/distribution/spec/auth/token/

export type Challenge = { scheme: "basic" } | { scheme: "bearer"; realm: string; service?: string; scope?: string };

/** The first challenge the client can answer, or undefined (no header, or only schemes it does not speak). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  // Several challenges may share one header: split before each scheme name that starts a challenge.
  const parts = header.split(/,?\s*(?=\b(?:Basic|Bearer|Digest|Negotiate)\b(?:\s|$))/i).filter((p) => p.trim());
  for (const part of parts) {
    const m = /^\s*(\w+)\s*(.*)$/s.exec(part);
    if (!m) continue;
    const scheme = m[1]!.toLowerCase();
    if (scheme === "basic") return { scheme: "basic" };
    if (scheme !== "bearer") continue;
    const params: Record<string, string> = {};
    for (const p of m[2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
      params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
    }
    if (!params["realm"]) continue;
    return { scheme: "bearer", realm: params["realm"], ...(params["service"] ? { service: params["service"] } : {}), ...(params["scope"] ? { scope: params["scope"] } : {}) };
  }
  return undefined;
}

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}
