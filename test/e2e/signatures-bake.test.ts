// Signed images only (docs/reference.md §2a), end to end: the built agent as a
// process bakes services with a signature policy from the stack's registries,
// signed by real third-party signers (cosign 2.5.0's classic `.sig`, and cosign
// 3's Sigstore bundle made with @sigstore/sign, test/stack/signing.ts). What
// verified is pulled by its digest and tagged, and recorded in --json, the
// manifest and the events; what did not is refused with image_signature_invalid,
// nothing pulled, the previous manifest untouched. The agent looks the
// registries up by their real names in the stack's hosts file, as its dockerd does.
import Docker from "dockerode";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, inject, it } from "vitest";
import { pushMultiPlatformImage, pushRandomImage } from "../stack/images.ts";
import { attachBundle, cosignSign, cosignStatement, makeBundle, makeKey } from "../stack/signing.ts";
import { bakeDone, startDaemon } from "./daemon-harness.ts";
import { dockerImage, newBox, parseJsonResult, PREFIX, secretLeaks, uid, type Box, type RunOptions } from "./harness.ts";
import { awsAndControlPlane } from "./lifecycle.ts";

const stack = inject("stack");
const docker = new Docker({ socketPath: stack.socketPath });
const { aws, cp, boxes } = awsAndControlPlane(() => aws.putParameter(`${PREFIX}rc_gh`, GH_SECRET));
const { ghcr, quay } = stack.registries;
const GH_SECRET = ghcr.password!;
/** The names the stack's dockerd resolves the registries by: the agent's own requests must reach the same registries. */
const viaStackHosts: RunOptions = { hostsFileOnly: true, hostsFile: path.join(stack.dir, "e0/hosts") };

const release = makeKey("p256");
const other = makeKey("p256");
const gh = { id: "rc_gh", type: "token", label: "GHCR (read packages)", registry: "ghcr.io", username: "acme-bot" };
const policy = { id: "sp_release", type: "cosign-key", label: "release key", publicKeys: [release.publicPem] };

function box(): Box {
  const b = newBox(stack, aws, { controlPlane: cp });
  boxes.push(b);
  return b;
}

function spec(services: Record<string, unknown>[]) {
  return { bakeId: `bk_${uid()}`, orgId: "org_123", registryCredentials: [gh], signaturePolicies: [policy], services };
}

/** A fresh one-layer image on `target` under `repository:tag`. */
async function image(target: typeof quay, repository: string, tag = "1") {
  return pushRandomImage(target.push, repository, tag, { layers: 1, bytes: 2048 });
}

const run = (b: Box, args: string[]) => b.run(args, viaStackHosts);

describe("a bake of signed images", () => {
  it("pulls a cosign-signed private image and a bundle-signed public one by the digests that verified, tags them, and records each signature", async () => {
    const n = uid();
    const api = await image(ghcr, `acme/signed-api-${n}`, "1.4.2");
    await cosignSign(ghcr.push, api.repository, api.digest, release);
    const web = await image(quay, `acme/signed-web-${n}`, "2");
    await attachBundle(quay.push, web.repository, web.digest, await makeBundle(release, cosignStatement(web.digest)));
    const b = box();
    const s = spec([
      { name: "api", image: `ghcr.io/${api.repository}:1.4.2`, registryCredentialId: "rc_gh", signaturePolicyId: "sp_release" },
      { name: "web", image: `quay.io/${web.repository}:2`, catalog: true, signaturePolicyId: "sp_release" },
    ]);
    const r = await run(b, ["bake", "--spec", b.write("spec.json", s), "--json"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const json = parseJsonResult(r);
    expect(json.services.map((x) => [x.name, x.status, x.digest, x.signature])).toEqual([
      ["api", "pulled", api.digest, { policyId: "sp_release", format: "cosign", keyId: release.keyId }],
      ["web", "pulled", web.digest, { policyId: "sp_release", format: "sigstore-bundle", keyId: release.keyId }],
    ]);
    // The human lines (on stderr with --json) say which key verified.
    expect(r.stderr).toContain(`verified ghcr.io/${api.repository}:1.4.2 ${api.digest}: cosign signature by key ${release.keyId} of sp_release`);
    // Docker has each image under the spec's tag, and it is the verified digest.
    expect((await dockerImage(docker, `ghcr.io/${api.repository}:1.4.2`))?.digests).toContain(api.digest);
    expect((await dockerImage(docker, `quay.io/${web.repository}:2`))?.digests).toContain(web.digest);
    const manifest = JSON.parse(readFileSync(path.join(b.stateDir, "manifest.json"), "utf8")) as { services: { name: string; digest: string; signature?: unknown }[] };
    expect(manifest.services.map((x) => [x.name, x.digest, x.signature])).toEqual([
      ["api", api.digest, { policyId: "sp_release", format: "cosign", keyId: release.keyId }],
      ["web", web.digest, { policyId: "sp_release", format: "sigstore-bundle", keyId: release.keyId }],
    ]);
    const pulled = cp.accepted().filter((e) => e["bakeId"] === s.bakeId && e["type"] === "service.pulled");
    expect(pulled.map((e) => [e["service"], e["signature"]])).toEqual(
      expect.arrayContaining([
        ["api", { policyId: "sp_release", format: "cosign", keyId: release.keyId }],
        ["web", { policyId: "sp_release", format: "sigstore-bundle", keyId: release.keyId }],
      ]),
    );
    expect(secretLeaks(GH_SECRET, b, r, cp.accepted())).toEqual([]);
  });

  it("refuses an unsigned image and one signed by another key: image_signature_invalid with what was found, nothing pulled, the previous manifest untouched", async () => {
    const n = uid();
    const good = await image(quay, `acme/good-${n}`);
    await cosignSign(quay.push, good.repository, good.digest, release);
    const b = box();
    const first = await run(b, ["bake", "--spec", b.write("ok.json", spec([{ name: "good", image: `quay.io/${good.repository}:1`, signaturePolicyId: "sp_release" }]))]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const before = readFileSync(path.join(b.stateDir, "manifest.json"), "utf8");

    const unsigned = await image(quay, `acme/unsigned-${n}`);
    const foreign = await image(quay, `acme/foreign-${n}`);
    await cosignSign(quay.push, foreign.repository, foreign.digest, other);
    const s = spec([
      { name: "unsigned", image: `quay.io/${unsigned.repository}:1`, signaturePolicyId: "sp_release" },
      { name: "foreign", image: `quay.io/${foreign.repository}:1`, signaturePolicyId: "sp_release" },
    ]);
    const r = await run(b, ["bake", "--spec", b.write("bad.json", s), "--json"]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const json = parseJsonResult(r);
    const byName = Object.fromEntries(json.services.map((x) => [x.name, x]));
    // The two images are verified side by side: the one that fails second may find the bake already failed.
    const failed = json.services.filter((x) => x.status === "failed");
    expect(failed.length).toBeGreaterThanOrEqual(1);
    for (const f of failed) expect(f.error?.code).toBe("image_signature_invalid");
    if (byName["unsigned"]!.status === "failed") {
      expect(byName["unsigned"]!.error!.message).toBe(
        `image quay.io/${unsigned.repository}:1 (${unsigned.digest}): no signature of this digest verifies with a key of sp_release; found 0 cosign signatures and 0 sigstore bundles: no signatures found`,
      );
    }
    if (byName["foreign"]!.status === "failed") {
      expect(byName["foreign"]!.error!.message).toMatch(
        new RegExp(`^image quay\\.io/${foreign.repository.replace("/", "\\/")}:1 \\(${foreign.digest}\\): no signature of this digest verifies with a key of sp_release; found 1 cosign signature and 0 sigstore bundles: cosign signature sha256:[0-9a-f]{12}: signed by a key not in sp_release`),
      );
    }
    expect(await dockerImage(docker, `quay.io/${unsigned.repository}:1`)).toBeUndefined();
    expect(await dockerImage(docker, `quay.io/${foreign.repository}:1`)).toBeUndefined();
    expect(readFileSync(path.join(b.stateDir, "manifest.json"), "utf8")).toBe(before);
  });

  it("refuses a tag moved to an unsigned image, though the bake before pulled it signed; Docker keeps the signed image under the tag", async () => {
    const repository = `acme/moving-${uid()}`;
    const signed = await image(quay, repository, "stable");
    await cosignSign(quay.push, repository, signed.digest, release);
    const b = box();
    const s = () => spec([{ name: "app", image: `quay.io/${repository}:stable`, signaturePolicyId: "sp_release" }]);
    const first = await run(b, ["bake", "--spec", b.write("one.json", s())]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const before = readFileSync(path.join(b.stateDir, "manifest.json"), "utf8");
    const moved = await image(quay, repository, "stable");
    const r = await run(b, ["bake", "--spec", b.write("two.json", s()), "--json"]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const [app] = parseJsonResult(r).services;
    expect(app!.error!.code).toBe("image_signature_invalid");
    expect(app!.error!.message).toContain(`(${moved.digest}): no signature of this digest verifies`);
    // 26.1's containerd store may list the same repository digest twice: the set is what counts.
    expect(new Set((await dockerImage(docker, `quay.io/${repository}:stable`))?.digests)).toEqual(new Set([signed.digest]));
    expect(readFileSync(path.join(b.stateDir, "manifest.json"), "utf8")).toBe(before);
  });

  it("verifies a pinned digest, and a second bake of it reuses the verification from the state dir", async () => {
    const img = await image(quay, `acme/pinned-${uid()}`);
    await cosignSign(quay.push, img.repository, img.digest, release);
    const b = box();
    const s = () => spec([{ name: "pinned", image: `quay.io/${img.repository}@${img.digest}`, signaturePolicyId: "sp_release" }]);
    const first = await run(b, ["bake", "--spec", b.write("one.json", s())]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toContain(`verified quay.io/${img.repository}@${img.digest} ${img.digest}: cosign signature by key ${release.keyId} of sp_release`);
    const second = await run(b, ["bake", "--spec", b.write("two.json", s()), "--json"]);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stderr).toContain("(verified before; reused)");
    expect(parseJsonResult(second).services[0]).toMatchObject({ status: "present", digest: img.digest, signature: { policyId: "sp_release", format: "cosign", keyId: release.keyId } });
  });
});

describe("a bake of a signed multi-platform image", () => {
  it("verifies the index the tag names and pulls it by that digest; an image signed only per platform is refused", async () => {
    const n = uid();
    const signed = await pushMultiPlatformImage(quay.push, `acme/multi-${n}`, "1", { kind: "oci-index" });
    await attachBundle(quay.push, `acme/multi-${n}`, signed.digest, await makeBundle(release, cosignStatement(signed.digest)));
    const perPlatform = await pushMultiPlatformImage(quay.push, `acme/multi-pp-${n}`, "1", { kind: "docker-list" });
    await cosignSign(quay.push, `acme/multi-pp-${n}`, perPlatform.platforms.amd64!.digest, release);
    const b = box();
    const ok = await run(b, ["bake", "--spec", b.write("ok.json", spec([{ name: "multi", image: `quay.io/acme/multi-${n}:1`, signaturePolicyId: "sp_release" }])), "--json"]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(parseJsonResult(ok).services[0]).toMatchObject({ status: "pulled", digest: signed.digest, signature: { format: "sigstore-bundle", keyId: release.keyId } });
    expect((await dockerImage(docker, `quay.io/acme/multi-${n}:1`))?.digests).toContain(signed.digest);
    const no = await run(b, ["bake", "--spec", b.write("no.json", spec([{ name: "pp", image: `quay.io/acme/multi-pp-${n}:1`, signaturePolicyId: "sp_release" }])), "--json"]);
    expect(no.code, no.stdout + no.stderr).toBe(1);
    expect(parseJsonResult(no).services[0]!.error!.message).toContain(`signs the linux/amd64 manifest ${perPlatform.platforms.amd64!.digest}, not the index ${perPlatform.digest}`);
    expect(await dockerImage(docker, `quay.io/acme/multi-pp-${n}:1`)).toBeUndefined();
  });
});

describe("the daemon", () => {
  it("records the signature in GET /v1/bakes/<id> and counts verifications by result in /metrics", async () => {
    const n = uid();
    const signed = await image(quay, `acme/d-signed-${n}`);
    await cosignSign(quay.push, signed.repository, signed.digest, release);
    const unsigned = await image(quay, `acme/d-unsigned-${n}`);
    const b = box();
    const d = await startDaemon(b, viaStackHosts);
    try {
      const ok = spec([{ name: "app", image: `quay.io/${signed.repository}:1`, signaturePolicyId: "sp_release" }]);
      expect((await d.api("POST", "/v1/bakes", ok)).status).toBe(202);
      const record = await bakeDone(d, ok.bakeId);
      expect(record).toMatchObject({ status: "succeeded", services: [{ name: "app", digest: signed.digest, signature: { policyId: "sp_release", format: "cosign", keyId: release.keyId } }] });
      const bad = spec([{ name: "app", image: `quay.io/${unsigned.repository}:1`, signaturePolicyId: "sp_release" }]);
      expect((await d.api("POST", "/v1/bakes", bad)).status).toBe(202);
      expect(await bakeDone(d, bad.bakeId)).toMatchObject({ status: "failed", services: [{ name: "app", status: "failed", error: { code: "image_signature_invalid" } }] });
      const metrics = (await d.api("GET", "/metrics", undefined, null)).text;
      expect(metrics).toMatch(/^slothbox_signature_verifications_total\{result="verified"\} 1$/m);
      expect(metrics).toMatch(/^slothbox_signature_verifications_total\{result="rejected"\} 1$/m);
      expect(metrics).toMatch(/^slothbox_errors_total\{code="image_signature_invalid"\} 1$/m);
    } finally {
      await d.stop("SIGTERM");
    }
  });
});

describe("verify", () => {
  it("exits 0 naming the key for a signed image, 1 for an unsigned one, 2 for a service without a policy; pulls nothing", async () => {
    const n = uid();
    const signed = await image(ghcr, `acme/v-signed-${n}`);
    await cosignSign(ghcr.push, signed.repository, signed.digest, release);
    const unsigned = await image(quay, `acme/v-unsigned-${n}`);
    const b = box();
    const f = b.write(
      "spec.json",
      spec([
        { name: "signed", image: `ghcr.io/${signed.repository}:1`, registryCredentialId: "rc_gh", signaturePolicyId: "sp_release" },
        { name: "unsigned", image: `quay.io/${unsigned.repository}:1`, signaturePolicyId: "sp_release" },
        { name: "plain", image: `quay.io/${unsigned.repository}:1` },
      ]),
    );
    const ok = await run(b, ["verify", "--spec", f, "--service", "signed"]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`digest:    ${signed.digest}`);
    expect(ok.stdout).toContain(`verified:  cosign signature by key ${release.keyId} of sp_release`);
    const no = await run(b, ["verify", "--spec", f, "--service", "unsigned"]);
    expect(no.code, no.stdout + no.stderr).toBe(1);
    expect(no.stdout).toContain("no signatures found");
    expect(no.stdout).toContain(`NOT VERIFIED: no signature of ${unsigned.digest} verifies with a key of sp_release`);
    const none = await run(b, ["verify", "--spec", f, "--service", "plain"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("names no signaturePolicyId");
    expect(await dockerImage(docker, `ghcr.io/${signed.repository}:1`)).toBeUndefined();
    expect(secretLeaks(GH_SECRET, b, [ok, no, none])).toEqual([]);
  });

  it("refuses a private key in the policy as spec_invalid at its path, never repeating it", async () => {
    const b = box();
    const priv = String(release.privateKey.export({ type: "pkcs8", format: "pem" }));
    const s = { ...spec([{ name: "a", image: "quay.io/acme/x:1", signaturePolicyId: "sp_release" }]), signaturePolicies: [{ ...policy, publicKeys: [release.publicPem, priv] }] };
    const r = await run(b, ["bake", "--spec", b.write("spec.json", s), "--json"]);
    expect(r.code).toBe(2);
    expect(parseJsonResult(r).violations).toEqual([{ path: "signaturePolicies[0].publicKeys[1]", code: "spec_invalid", message: expect.stringContaining("a private key, not a public key") }]);
    const body = priv.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
    expect(r.stdout + r.stderr).not.toContain(body.slice(8, 40));
  });
});
