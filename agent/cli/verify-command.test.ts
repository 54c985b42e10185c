// `slothbox-agent verify` as a core: the spec, the service, the policy, and what a
// plain fake verifier answers, printed for a person, with the exit codes of §3.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../config.ts";
import { CredentialResolver } from "../credentials/resolve.ts";
import { AgentError } from "../errors/agent-error.ts";
import { createRuntime } from "../runtime.ts";
import { parsePolicyKey } from "../spec/public-keys.ts";
import type { SignatureVerifier, VerificationReport, VerifyRequest } from "../signatures/types.ts";
import { FakeAws, fakeClock } from "../../test/unit/fakes.ts";
import { verifyCommand } from "./verify-command.ts";

const PREFIX = "/slothbox/registry-credentials/";
const A = "sha256:" + "a".repeat(64);
const PEM = String(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }));
const KEY_ID = (() => {
  const r = parsePolicyKey(PEM);
  if (!r.ok) throw new Error(r.reason);
  return r.key.keyId;
})();
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(answer: (req: VerifyRequest) => Promise<VerificationReport>) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-verify-"));
  dirs.push(dir);
  const config = loadConfig({ env: { SLOTHBOX_STATE_DIR: dir }, readFile: () => undefined });
  const rt = createRuntime(config, {}, { report: false });
  const aws = new FakeAws();
  aws.parameters.set(`${PREFIX}rc_gh`, { type: "SecureString", value: "ghp_secret_value" });
  rt.newResolver = () => new CredentialResolver({ aws: () => aws, scrubber: rt.scrubber, clock: fakeClock(), random: () => 0.5, ssmParameterPrefix: PREFIX });
  const asked: VerifyRequest[] = [];
  const verifier: SignatureVerifier = { verify: (req) => (asked.push(req), answer(req)) };
  const spec = path.join(dir, "spec.json");
  writeFileSync(
    spec,
    JSON.stringify({
      bakeId: "bk_1",
      orgId: "o",
      registryCredentials: [{ id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" }],
      services: [
        { name: "billing", image: "ghcr.io/acme/billing:3.1", registryCredentialId: "rc_gh", signaturePolicyId: "sp_release" },
        { name: "plain", image: "redis:7", catalog: true },
      ],
      signaturePolicies: [{ id: "sp_release", type: "cosign-key", label: "release key", publicKeys: [PEM] }],
    }),
  );
  const out: string[] = [];
  const err: string[] = [];
  const run = (service: string, file = spec) =>
    verifyCommand(rt, { spec: file, service }, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) }, new AbortController().signal, verifier);
  return { run, out, err, asked, dir };
}

describe("verify", () => {
  it("exits 0 and names the digest, each signature found and the key that verified; asks with the service's credential", async () => {
    const t = setup(async (req) => ({
      image: req.image,
      digest: A,
      candidates: [
        { format: "cosign", source: "sha256:" + "1".repeat(64), rejected: "signed by a key not in sp_release" },
        { format: "sigstore-bundle", source: "sha256:" + "2".repeat(64) },
      ],
      accepted: { policyId: "sp_release", format: "sigstore-bundle", keyId: KEY_ID },
    }));
    expect(await t.run("billing")).toBe(0);
    expect(t.asked.map((q) => [q.image, q.policy.id, q.auth?.username])).toEqual([["ghcr.io/acme/billing:3.1", "sp_release", "acme-bot"]]);
    const text = t.out.join("\n");
    expect(text).toContain(`digest:    ${A}`);
    expect(text).toContain(`cosign signature sha256:${"1".repeat(64)}: rejected: signed by a key not in sp_release`);
    expect(text).toContain(`sigstore bundle sha256:${"2".repeat(64)}: verified`);
    expect(text).toContain(`verified:  sigstore bundle by key ${KEY_ID} of sp_release`);
    expect(text).toContain(`a bake would pull ghcr.io/acme/billing@${A}`);
    expect(text).not.toContain("ghp_secret_value");
  });

  it("exits 1 when no signature verifies, saying what was found", async () => {
    const t = setup(async (req) => ({ image: req.image, digest: A, candidates: [] }));
    expect(await t.run("billing")).toBe(1);
    const text = t.out.join("\n");
    expect(text).toContain("found:     0 cosign signatures, 0 sigstore bundles");
    expect(text).toContain("no signatures found");
    expect(text).toContain(`NOT VERIFIED: no signature of ${A} verifies with a key of sp_release`);
    expect(text).toContain("a bake would fail with image_signature_invalid and pull nothing");
  });

  it("exits 1 with the code, the registry's words and the hint when the registry fails", async () => {
    const t = setup(async () => {
      throw new AgentError("registry_unreachable", "GET https://ghcr.io/v2/: connect ECONNREFUSED 127.0.0.1:443");
    });
    expect(await t.run("billing")).toBe(1);
    expect(t.out.join("\n")).toMatch(/result:\s+FAILED registry_unreachable \(retryable\)\n\s+reported: GET https:\/\/ghcr.io\/v2\/: connect ECONNREFUSED/);
  });

  it("exits 2 for a service without a policy, an unknown service, and an invalid spec, and asks nothing", async () => {
    const t = setup(async () => {
      throw new Error("not to be asked");
    });
    expect(await t.run("plain")).toBe(2);
    expect(t.err.join("\n")).toContain("service plain names no signaturePolicyId");
    expect(await t.run("nope")).toBe(2);
    expect(t.err.join("\n")).toContain('no service named "nope" in the spec (have: billing, plain)');
    const bad = path.join(t.dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ bakeId: "b", orgId: "o", services: [{ name: "a", image: "redis:7", signaturePolicyId: "sp_x" }] }));
    expect(await t.run("a", bad)).toBe(2);
    expect(t.err.join("\n")).toContain('services[0].signaturePolicyId: spec_invalid: no signature policy with id "sp_x" in signaturePolicies');
    expect(t.asked).toEqual([]);
  });
});
