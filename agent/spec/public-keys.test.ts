import { createHash, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { describeKey, parsePolicyKey } from "./public-keys.ts";

const spkiPem = (k: { publicKey: { export(o: { type: "spki"; format: "pem" }): string | Buffer } }) => String(k.publicKey.export({ type: "spki", format: "pem" }));

describe("parsePolicyKey", () => {
  it.each([
    ["ECDSA P-256", () => generateKeyPairSync("ec", { namedCurve: "P-256" })],
    ["ECDSA P-384", () => generateKeyPairSync("ec", { namedCurve: "P-384" })],
    ["ECDSA P-521", () => generateKeyPairSync("ec", { namedCurve: "P-521" })],
    ["RSA 2048", () => generateKeyPairSync("rsa", { modulusLength: 2048 })],
    ["Ed25519", () => generateKeyPairSync("ed25519")],
  ])("accepts a PEM PUBLIC KEY of %s and names it by the SHA-256 of its SPKI", (kind, gen) => {
    const pair = gen();
    const r = parsePolicyKey(spkiPem(pair));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const der = pair.publicKey.export({ type: "spki", format: "der" });
    expect(r.key.keyId).toBe(createHash("sha256").update(der).digest("hex"));
    expect(r.key.keyId).toMatch(/^[0-9a-f]{64}$/);
    expect(describeKey(r.key.key)).toBe(kind);
  });

  it("accepts CRLF line ends and surrounding whitespace", () => {
    const pem = spkiPem(generateKeyPairSync("ec", { namedCurve: "P-256" })).replace(/\n/g, "\r\n");
    expect(parsePolicyKey(`\n  ${pem}\n`).ok).toBe(true);
  });

  it.each([
    ["PKCS#8", (k: ReturnType<typeof generateKeyPairSync>) => String(k.privateKey.export({ type: "pkcs8", format: "pem" }))],
    ["SEC1", (k: ReturnType<typeof generateKeyPairSync>) => String(k.privateKey.export({ type: "sec1", format: "pem" }))],
    ["encrypted PKCS#8", (k: ReturnType<typeof generateKeyPairSync>) => String(k.privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "pw" }))],
  ])("refuses a %s private key as one, and never quotes a byte of it", (_, exp) => {
    const pem = exp(generateKeyPairSync("ec", { namedCurve: "P-256" }));
    const r = parsePolicyKey(pem);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toContain("a private key, not a public key");
    const body = pem.split("\n").filter((l) => l && !l.startsWith("-----"));
    for (const line of body) expect(r.reason).not.toContain(line.slice(0, 16));
  });

  it("refuses cosign's own encrypted private key file and a private key behind a public key in one paste", () => {
    const cosign = "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\neyJrZGYiOnsibmFtZSI6InNjcnlwdCJ9fQ==\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n";
    expect(parsePolicyKey(cosign)).toEqual({ ok: false, reason: expect.stringContaining("a private key, not a public key") });
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const both = spkiPem(pair) + String(pair.privateKey.export({ type: "pkcs8", format: "pem" }));
    expect(parsePolicyKey(both)).toEqual({ ok: false, reason: expect.stringContaining("a private key, not a public key") });
  });

  it("refuses a private key's DER under a PUBLIC KEY label without quoting it", () => {
    const der = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "der" });
    const b64 = der.toString("base64");
    const r = parsePolicyKey(`-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`);
    expect(r).toEqual({ ok: false, reason: "does not parse as a PEM PUBLIC KEY (SPKI)" });
  });

  it.each([
    ["RSA of 1024 bits", () => spkiPem(generateKeyPairSync("rsa", { modulusLength: 1024 })), "is an RSA key of 1024 bits; at least 2048 are needed"],
    ["an EC key on secp256k1", () => spkiPem(generateKeyPairSync("ec", { namedCurve: "secp256k1" })), "curve secp256k1"],
    ["an X25519 key", () => spkiPem(generateKeyPairSync("x25519")), "is a x25519 key"],
    ["an Ed448 key", () => spkiPem(generateKeyPairSync("ed448")), "is a ed448 key"],
    ["a PKCS#1 RSA public key", () => String(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "pkcs1", format: "pem" })), '"RSA PUBLIC KEY" (PKCS#1)'],
    ["a certificate", () => "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "is a certificate, not a public key"],
    ["no PEM at all", () => "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", "is not a PEM block"],
    ["a truncated key", () => spkiPem(generateKeyPairSync("ec", { namedCurve: "P-256" })).replace(/\n[^\n]+\n-----END/, "\n-----END"), "does not parse as a PEM PUBLIC KEY (SPKI)"],
    ["text around the block", () => `my key:\n${spkiPem(generateKeyPairSync("ed25519"))}`, "not a well-formed PEM PUBLIC KEY block"],
    ["two keys in one entry", () => spkiPem(generateKeyPairSync("ed25519")) + spkiPem(generateKeyPairSync("ed25519")), "holds 2 PEM blocks"],
    ["a huge text", () => "x".repeat(20_000), "is longer than 16384 characters"],
  ])("refuses %s with its reason", (_, pem, reason) => {
    const r = parsePolicyKey(pem());
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });
});
