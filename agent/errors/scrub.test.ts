import { describe, expect, it } from "vitest";
import { MAX_SECRETS, REDACTED, Scrubber } from "./scrub.ts";

const scrubberWith = (...secrets: string[]) => {
  const s = new Scrubber();
  for (const x of secrets) s.add(x);
  return s;
};

describe("Scrubber", () => {
  const secret = 'ghp_k"ey&<with>\\odd+chars/= and spaces';

  it.each([
    ["as is", secret],
    ["JSON-escaped", JSON.stringify(secret).slice(1, -1)],
    ["with Go's JSON escapes", JSON.stringify(secret).slice(1, -1).replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")],
    ["URL-encoded", encodeURIComponent(secret)],
    ["form-encoded", encodeURIComponent(secret).replace(/%20/g, "+")],
  ])("removes the secret %s", (_how, form) => {
    const s = scrubberWith(secret);
    expect(s.scrub(`before ${form} after`)).toBe(`before ${REDACTED} after`);
  });

  it.each([0, 1, 2, 3, 4, 5])("removes it from base64 and base64url at any byte offset (X-Registry-Auth, Basic auth), username of %i bytes", (n) => {
    const s = scrubberWith(secret);
    const user = "u".repeat(n);
    const header = Buffer.from(JSON.stringify({ username: user, password: secret, serveraddress: "ghcr.io" })).toString("base64url");
    const basic = Buffer.from(`${user}:${secret}`).toString("base64");
    for (const encoded of [header, basic]) {
      const out = s.scrub(`X-Registry-Auth: ${encoded}`);
      expect(out).toContain(REDACTED);
      // What is left of the encoding no longer decodes to the secret, nor to a run of it.
      for (const part of out.split(REDACTED)) expect(Buffer.from(part, "base64").toString("latin1")).not.toContain(secret.slice(3, 15));
    }
  });

  it("removes each line of a multi-line secret, and the private key of a service-account JSON key line by line", () => {
    const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nq1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c2v3b4n5m6\n-----END PRIVATE KEY-----\n";
    const key = JSON.stringify({ type: "service_account", private_key_id: "0123456789abcdef0123", private_key: pem, client_email: "puller@acme.iam.gserviceaccount.com" }, null, 2);
    const s = scrubberWith(key);
    expect(s.scrub("line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7")).toBe(`line: ${REDACTED}`);
    expect(s.scrub(`echoed: ${JSON.stringify(pem)}`)).not.toContain("MIIEvQ");
    expect(s.scrub("id 0123456789abcdef0123")).toBe(`id ${REDACTED}`);
    // Strings of the key that are not secret stay readable.
    expect(s.scrub("client puller@acme.iam.gserviceaccount.com of type service_account")).toBe("client puller@acme.iam.gserviceaccount.com of type service_account");
  });

  it("replaces a very short secret only where it stands alone, never inside a digest or a word", () => {
    const s = scrubberWith("ab12");
    const digest = "sha256:00ab12ff" + "0".repeat(56);
    expect(s.scrub(`digest ${digest}`)).toBe(`digest ${digest}`);
    expect(s.scrub("password ab12, again ab12.")).toBe(`password ${REDACTED}, again ${REDACTED}.`);
    expect(s.scrub("crab12s")).toBe("crab12s");
  });

  it("removes the longer of two overlapping secrets whole", () => {
    const s = scrubberWith("abcdefghijklmnop", "abcdefghijklmnopqrstuvwx");
    expect(s.scrub("abcdefghijklmnopqrstuvwx")).toBe(REDACTED);
  });

  it("keeps at most MAX_SECRETS secrets, forgetting the least recently registered", () => {
    const s = new Scrubber();
    const token = (i: number) => `ecr-token-${String(i).padStart(6, "0")}-xxxxxxxxxxxx`;
    s.add(token(0));
    for (let i = 1; i <= MAX_SECRETS + 50; i++) {
      s.add(token(i));
      if (i % 10 === 0) s.add(token(0));
    }
    expect(s.size).toBe(MAX_SECRETS);
    expect(s.scrub(token(0))).toBe(REDACTED);
    expect(s.scrub(token(1))).toBe(token(1));
    expect(s.scrub(token(MAX_SECRETS + 50))).toBe(REDACTED);
  });

  it("never forgets a pinned secret (the API and control-plane tokens), however many registry secrets come and go", () => {
    const s = new Scrubber();
    s.pin("api-token-0123456789abcdef");
    s.add("api-token-0123456789abcdef");
    for (let i = 0; i < MAX_SECRETS * 2; i++) s.add(`ecr-token-${String(i).padStart(6, "0")}-xxxxxxxxxxxx`);
    expect(s.size).toBe(MAX_SECRETS);
    expect(s.scrub("Bearer api-token-0123456789abcdef")).toBe(`Bearer ${REDACTED}`);
  });

  it("scrubs every string in nested values", () => {
    const s = scrubberWith("dop_v1_abc123abc123");
    expect(s.scrubValue({ username: "dop_v1_abc123abc123", list: ["a dop_v1_abc123abc123 b"], n: 3 })).toEqual({ username: REDACTED, list: [`a ${REDACTED} b`], n: 3 });
  });

  it("leaves strings alone when nothing is registered", () => {
    expect(new Scrubber().scrub("hello")).toBe("hello");
  });
});
