import { describe, expect, it } from "vitest";
import { MAX_ROLE_SESSIONS, MAX_SECRETS, REDACTED, Scrubber } from "./scrub.ts";

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

  it("keeps the instance role's credentials of the last sessions apart from registry secrets, which cannot push them out", () => {
    const s = new Scrubber();
    const role = (i: number) => ({ accessKeyId: `ASIA${String(i).padStart(16, "0")}`, secretAccessKey: `wJalrXUtnFEMI/K7MDENG/${i}xxxxxxxxxxxxxxxx`, sessionToken: `IQoJb3JpZ2luX2VjE${i}${"a".repeat(40)}` });
    s.addRoleCredentials(role(0));
    for (let i = 0; i < MAX_SECRETS * 2; i++) s.add(`ecr-token-${String(i).padStart(6, "0")}-xxxxxxxxxxxx`);
    const r0 = role(0);
    expect(s.scrub(`${r0.accessKeyId} ${r0.secretAccessKey} ${r0.sessionToken}`)).toBe(`${REDACTED} ${REDACTED} ${REDACTED}`);
    // Sessions rotate about hourly; the oldest are forgotten past MAX_ROLE_SESSIONS.
    for (let i = 1; i <= MAX_ROLE_SESSIONS; i++) s.addRoleCredentials(role(i));
    expect(s.scrub(r0.secretAccessKey)).toBe(r0.secretAccessKey);
    expect(s.scrub(role(1).sessionToken)).toBe(REDACTED);
  });

  it("scrubs every string in nested values", () => {
    const s = scrubberWith("dop_v1_abc123abc123");
    expect(s.scrubValue({ username: "dop_v1_abc123abc123", list: ["a dop_v1_abc123abc123 b"], n: 3 })).toEqual({ username: REDACTED, list: [`a ${REDACTED} b`], n: 3 });
  });

  describe("holes found in review (issue 27)", () => {
    const odd = "ghp_Tok!en'(with)*odd \"chars\" & more";

    it("removes a secret JSON-escaped twice (a JSON document inside a JSON string)", () => {
      const twice = JSON.stringify(JSON.stringify(odd).slice(1, -1)).slice(1, -1);
      expect(twice).toContain('\\\\\\"chars');
      expect(scrubberWith(odd).scrub(`body: ${twice}`)).toBe(`body: ${REDACTED}`);
    });

    it("removes a secret URL-encoded with lower-case %xx", () => {
      const secret = "ghp_Tok/en:with;odd=chars?";
      const lower = encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (x) => x.toLowerCase());
      expect(lower).toBe("ghp_Tok%2fen%3awith%3bodd%3dchars%3f");
      expect(scrubberWith(secret).scrub(`q=${lower}&x=1`)).toBe(`q=${REDACTED}&x=1`);
    });

    it.each([
      // Go's url.QueryEscape: everything but A-Z a-z 0-9 - _ . ~ is escaped, a space is +.
      ["url.QueryEscape", "ghp_Tok%21en%27%28with%29%2Aodd+%22chars%22+%26+more"],
      // Go's url.PathEscape: $ & + : = @ stay, a space is %20.
      ["url.PathEscape", "ghp_Tok%21en%27%28with%29%2Aodd%20%22chars%22%20&%20more"],
      ["url.QueryEscape, lower-case", "ghp_Tok%21en%27%28with%29%2aodd+%22chars%22+%26+more"],
    ])("removes a secret escaped by Go's %s", (_how, form) => {
      expect(scrubberWith(odd).scrub(`GET /v2/?t=${form} HTTP/1.1`)).toBe(`GET /v2/?t=${REDACTED} HTTP/1.1`);
    });

    it.each([76, 64])("removes a secret from base64 wrapped at %i columns, at any byte offset", (width) => {
      const secret = "dop_v1_" + "0123456789abcdef".repeat(5);
      const s = scrubberWith(secret);
      for (let n = 0; n < 60; n += 7) {
        const encoded = Buffer.from(`${"u".repeat(n)}:${secret}`).toString("base64");
        const wrapped = encoded.match(new RegExp(`.{1,${width}}`, "g"))!.join("\n");
        expect(wrapped).toContain("\n");
        const out = s.scrub(`auth:\n${wrapped}\nend`);
        expect(out).toContain(REDACTED);
        expect(Buffer.from(out.replace(/\s/g, ""), "base64").toString("latin1")).not.toContain(secret.slice(8, 24));
        expect(out.endsWith("\nend")).toBe(true);
      }
    });

    it.each(["hex", "HEX"])("removes a secret in %s, whole or wrapped at 64 columns", (kind) => {
      const secret = "glpat-" + "Zy3xWv9uTs8r".repeat(4);
      const hex = Buffer.from(`user:${secret}`).toString("hex");
      const form = kind === "HEX" ? hex.toUpperCase() : hex;
      const s = scrubberWith(secret);
      const whole = s.scrub(`dump ${form} end`);
      expect(whole).toContain(REDACTED);
      expect(whole).not.toContain(form.slice(12, 60));
      const wrapped = form.match(/.{1,64}/g)!.join("\n");
      const out = s.scrub(wrapped);
      expect(out).toContain(REDACTED);
      expect(out.replace(/\s/g, "")).not.toContain(form.slice(12, 60));
    });

    it("removes a short secret right after = (password=hunter2xyz)", () => {
      const s = scrubberWith("hunter2xyz");
      expect(s.scrub("login with password=hunter2xyz failed")).toBe(`login with password=${REDACTED} failed`);
      expect(s.scrub("pw: hunter2xyz")).toBe(`pw: ${REDACTED}`);
    });
  });

  describe("values secret by their shape, registered or not (NODE_DEBUG prints request headers)", () => {
    const sig = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    it.each([
      ["a SigV4 Authorization header", `authorization: AWS4-HMAC-SHA256 Credential=ASIAX/20261207/us-east-1/ssm/aws4_request, SignedHeaders=host;x-amz-date, Signature=${sig}`, "Signature=[REDACTED]"],
      ["a presigned query", `GET /?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=${sig}&X-Amz-Date=1`, "X-Amz-Signature=[REDACTED]&X-Amz-Date=1"],
      ["an x-amz-security-token header", "'x-amz-security-token': 'IQoJb3JpZ2luX2VjEKr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+abc=',", "'x-amz-security-token': '[REDACTED]',"],
      ["an x-amz-security-token in a raw header list", "[ 'X-Amz-Security-Token', 'IQoJb3JpZ2luX2VjEKr+abc=' ]", "'X-Amz-Security-Token', '[REDACTED]' ]"],
      ["an X-Amz-Security-Token query parameter", "?X-Amz-Security-Token=IQoJb3JpZ2lu%2BX2VjEKr%3D&x=1", "X-Amz-Security-Token=[REDACTED]&x=1"],
      ["an IMDSv2 session token", "x-aws-ec2-metadata-token: AQAEAHpLBxpc4cPA6u7yfKbXkdkRXbCZs-YmMuAGYdRiWtYdcNBIiQ==", "x-aws-ec2-metadata-token: [REDACTED]"],
      ["an X-Registry-Auth header in JSON", '{"X-Registry-Auth":"eyJ1c2VybmFtZSI6ImFjbWUiLCJwYXNzd29yZCI6Inh4In0="}', '"X-Registry-Auth":"[REDACTED]"}'],
      ["an X-Registry-Auth header escaped in JSON", '\\"X-Registry-Auth\\":\\"eyJ1c2VybmFtZSI6ImFjbWUi\\"', 'X-Registry-Auth\\":\\"[REDACTED]\\"'],
    ])("removes %s", (_what, text, kept) => {
      const out = new Scrubber().scrub(text);
      expect(out).toContain(kept);
      expect(out).not.toMatch(/IQoJ|eyJ1|AQAEAH|5d672d79/);
    });

    it("leaves the names of signed headers and other hashes alone", () => {
      const text = "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-target digest sha256:" + sig;
      expect(new Scrubber().scrub(text)).toBe(text);
    });
  });

  it("registers a known secret again without forgetting it or compiling anew (a cache hit, the role's credentials on each request)", () => {
    const s = new Scrubber();
    const token = (i: number) => `ecr-token-${String(i).padStart(6, "0")}-xxxxxxxxxxxx`;
    for (let i = 0; i < MAX_SECRETS; i++) s.add(token(i));
    expect(s.scrub(token(0))).toBe(REDACTED);
    s.add(token(0));
    s.add(token(MAX_SECRETS));
    expect(s.scrub(`${token(0)} ${token(1)}`)).toBe(`${REDACTED} ${token(1)}`);
  });

  it("leaves strings alone when nothing is registered", () => {
    expect(new Scrubber().scrub("hello")).toBe("hello");
  });
});
