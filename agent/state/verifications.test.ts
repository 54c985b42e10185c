import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Verifications } from "./verifications.ts";

const A = "sha256:" + "a".repeat(64);
const B = "sha256:" + "b".repeat(64);
const K1 = "1".repeat(64);
const K2 = "2".repeat(64);
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const stateDir = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), "sbx-verif-"));
  dirs.push(d);
  return d;
};

describe("Verifications", () => {
  it("finds a verification by digest and the set of keys, in any order, and nothing for another digest or another set", async () => {
    const v = new Verifications(stateDir());
    await v.record(A, [K1, K2], { format: "cosign", keyId: K2 }, 0);
    expect(await v.find(A, [K2, K1])).toEqual({ format: "cosign", keyId: K2 });
    expect(await v.find(B, [K1, K2])).toBeUndefined();
    expect(await v.find(A, [K1])).toBeUndefined();
    expect(await v.find(A, [K1, K2, "3".repeat(64)])).toBeUndefined();
  });

  it("never finds a verification kept under the rules before bundles had to be signatures (rules 1's file name)", async () => {
    const v = new Verifications(stateDir());
    await v.record(A, [K1], { format: "sigstore-bundle", keyId: K1 }, 0);
    const [file] = readdirSync(v.dir);
    const entry = readFileSync(path.join(v.dir, file!), "utf8");
    rmSync(path.join(v.dir, file!));
    const rules1 = createHash("sha256").update(`${A}\n${K1}`).digest("hex").slice(0, 40) + ".json";
    writeFileSync(path.join(v.dir, rules1), entry);
    expect(await v.find(A, [K1])).toBeUndefined();
  });

  it("does not take a file whose content names another digest or a key outside the set", async () => {
    const v = new Verifications(stateDir());
    await v.record(A, [K1], { format: "sigstore-bundle", keyId: K1 }, 0);
    const [file] = readdirSync(v.dir);
    const entry = JSON.parse(readFileSync(path.join(v.dir, file!), "utf8")) as Record<string, unknown>;
    writeFileSync(path.join(v.dir, file!), JSON.stringify({ ...entry, digest: B }));
    expect(await v.find(A, [K1])).toBeUndefined();
    writeFileSync(path.join(v.dir, file!), JSON.stringify({ ...entry, keyId: K2 }));
    expect(await v.find(A, [K1])).toBeUndefined();
    writeFileSync(path.join(v.dir, file!), "not json");
    expect(await v.find(A, [K1])).toBeUndefined();
  });

  it("keeps the newest entries only", async () => {
    const v = new Verifications(stateDir(), 2);
    await v.record(A, [K1], { format: "cosign", keyId: K1 }, 1000);
    await v.record(B, [K1], { format: "cosign", keyId: K1 }, 2000);
    await v.record(A, [K2], { format: "cosign", keyId: K2 }, 3000);
    expect(readdirSync(v.dir)).toHaveLength(2);
    expect(await v.find(A, [K1])).toBeUndefined();
    expect(await v.find(B, [K1])).toBeDefined();
    expect(await v.find(A, [K2])).toBeDefined();
  });
});
