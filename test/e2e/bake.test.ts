// `slothbox-agent bake` end to end: the built agent as a process, the stack's
// dockerd and registries, the AWS stand-in and the control plane. Each test
// asserts the exit code, the error code, Docker's or AWS's words, the manifest,
// and the secret's absence from every output.
import Docker from "dockerode";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { kept } from "../stack/control-plane.ts";
import { pushRandomImage, type PushedImage, type RegistryTarget } from "../stack/images.ts";
import { injectFault } from "../stack/registry-front.ts";
import { ECR_ACCOUNT } from "../stack/stack.ts";
import { dockerImage, newBox, parseJsonResult, PREFIX, secretLeaks, uid, type Box } from "./harness.ts";
import { awsAndControlPlane } from "./lifecycle.ts";

const stack = inject("stack");
const docker = new Docker({ socketPath: stack.socketPath });
const { aws, cp, boxes } = awsAndControlPlane(() => {
  aws.putParameter(`${PREFIX}rc_gh`, GH_SECRET);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
});
const { ghcr, ecr, quay, stall, flaky } = stack.registries;
const GH_SECRET = ghcr.password!;
const target = (r: typeof ghcr): RegistryTarget => r.push;

function box(opts: Parameters<typeof newBox>[2] = {}): Box {
  const b = newBox(stack, aws, opts);
  boxes.push(b);
  return b;
}

const creds = {
  gh: { id: "rc_gh", type: "token", label: "GHCR (read packages)", registry: "ghcr.io", username: "acme-bot" },
  ecr: { id: "rc_ecr", type: "ecr", label: "prod ECR", registry: ecr.host },
};

function spec(services: Record<string, unknown>[], registryCredentials: Record<string, unknown>[] = [creds.gh, creds.ecr]) {
  return { bakeId: `bk_${uid()}`, orgId: "org_123", registryCredentials, services };
}

afterEach(() => aws.clearFaults());

describe("a successful bake", () => {
  let api: PushedImage, worker: PushedImage, cache: PushedImage;
  beforeAll(async () => {
    const n = uid();
    [api, worker, cache] = await Promise.all([
      pushRandomImage(target(ghcr), `acme/api-${n}`, "1.4.2", { layers: 3 }),
      pushRandomImage(target(ecr), `worker-${n}`, "7", { layers: 2 }),
      pushRandomImage(target(quay), `acme/cache-${n}`, "7", { layers: 1 }),
    ]);
  });

  it("pulls token, ECR and catalog images, writes the manifest, reports every event, and leaks no secret", async () => {
    const b = box({ controlPlane: cp });
    const s = spec([
      { name: "api", image: api.reference, registryCredentialId: "rc_gh" },
      { name: "worker", image: `${ecr.host}/${worker.repository}@${worker.digest}`, registryCredentialId: "rc_ecr" },
      { name: "cache", image: cache.reference, catalog: true },
    ]);
    const before = aws.calls.length;
    const r = await b.run(["bake", "--spec", b.write("spec.json", s)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SERVICE\s+IMAGE\s+RESULT\s+DIGEST/);
    expect(r.stdout).toContain(`bake ${s.bakeId} succeeded`);
    expect(r.stdout).toContain(api.digest);

    const [apiImage, workerImage, cacheImage] = await Promise.all([
      dockerImage(docker, api.reference),
      dockerImage(docker, `${ecr.host}/${worker.repository}@${worker.digest}`),
      dockerImage(docker, cache.reference),
    ]);
    expect(apiImage?.digests).toContain(api.digest);
    expect(workerImage?.digests).toContain(worker.digest);
    expect(cacheImage?.digests).toContain(cache.digest);

    const manifest = JSON.parse(readFileSync(path.join(b.stateDir, "manifest.json"), "utf8"));
    expect(manifest.bakeId).toBe(s.bakeId);
    expect(manifest.services).toEqual([
      expect.objectContaining({ name: "api", image: api.reference, imageId: apiImage!.id, digest: api.digest, registry: "ghcr.io", registryCredentialId: "rc_gh", credentialType: "token", parameterName: `${PREFIX}rc_gh` }),
      expect.objectContaining({ name: "worker", imageId: workerImage!.id, digest: worker.digest, registry: ecr.host, registryCredentialId: "rc_ecr", credentialType: "ecr", parameterName: null }),
      expect.objectContaining({ name: "cache", imageId: cacheImage!.id, digest: cache.digest, registry: "quay.io", registryCredentialId: null }),
    ]);

    const calls = aws.calls.slice(before);
    expect(calls.filter((c) => c.api === "ssm:GetParameter")).toEqual([expect.objectContaining({ target: `${PREFIX}rc_gh`, withDecryption: true, outcome: "ok" })]);
    expect(calls.filter((c) => c.api === "ecr:GetAuthorizationToken")).toEqual([expect.objectContaining({ target: ECR_ACCOUNT, region: "us-east-1", outcome: "ok" })]);

    const events = cp.deliveries.filter((d) => d.bakeId === s.bakeId && kept(d.body["type"]));
    expect(events.map((d) => d.body["type"])).toEqual(["bake.started", "service.pulled", "service.pulled", "service.pulled", "bake.succeeded"]);
    expect(events.every((d) => d.boxId === "box-e2e" && d.idempotencyKey === d.body["id"] && d.status === 202)).toBe(true);
    const pulled = events.find((d) => d.body["service"] === "api")!.body;
    expect(pulled).toMatchObject({ image: api.reference, digest: api.digest, bakeId: s.bakeId });
    expect(readdirSync(path.join(b.stateDir, "outbox")).filter((f) => f.endsWith(".json"))).toEqual([]);

    expect(secretLeaks(GH_SECRET, b, r, events.map((e) => e.body))).toEqual([]);
    expect(secretLeaks(ecr.password!, b, r, events.map((e) => e.body))).toEqual([]);
    expect(secretLeaks(cp.token, b, r, events.map((e) => e.body))).toEqual([]);
  });

  it("answers --json with exactly one object, and reports a pinned image Docker has as present", async () => {
    const b = box();
    const pinned = `${ecr.host}/${worker.repository}@${worker.digest}`;
    const s = spec([
      { name: "worker", image: pinned, registryCredentialId: "rc_ecr" },
      { name: "cache", image: cache.reference, catalog: true },
    ]);
    const before = aws.callsTo("ecr:GetAuthorizationToken").length;
    const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = parseJsonResult(r);
    expect(out).toMatchObject({ bakeId: s.bakeId, status: "succeeded", violations: [] });
    expect(out.services[0]).toMatchObject({ name: "worker", status: "present", digest: worker.digest, imageId: (await dockerImage(docker, pinned))!.id });
    expect(out.services[1]).toMatchObject({ name: "cache", status: "pulled", digest: cache.digest });
    // Nothing to pull for the pinned image: no ECR call at all.
    expect(aws.callsTo("ecr:GetAuthorizationToken").length).toBe(before);
    expect(r.stderr).toContain("events: not sent (no controlPlaneUrl configured)");
  });
});

describe("one pull and one AWS call per shared thing", () => {
  it("pulls an image used by two services once, and fetches a shared credential once", async () => {
    const n = uid();
    const [a, c] = await Promise.all([
      pushRandomImage(target(ghcr), `acme/shared-${n}`, "1"),
      pushRandomImage(target(ghcr), `acme/other-${n}`, "1"),
    ]);
    const b = box();
    const s = spec([
      { name: "web", image: a.reference, registryCredentialId: "rc_gh" },
      { name: "web2", image: a.reference, registryCredentialId: "rc_gh" },
      { name: "other", image: c.reference, registryCredentialId: "rc_gh" },
    ]);
    const before = aws.callsTo("ssm:GetParameter").length;
    const r = await b.run(["bake", "--spec", b.write("spec.json", s)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.match(new RegExp(`pulling ${a.reference.replace(/[.]/g, "\\.")} `, "g"))).toHaveLength(1);
    expect(r.stdout).toContain("for web, web2");
    expect(aws.callsTo("ssm:GetParameter").length - before).toBe(1);
  });

  it("asks IMDS for the instance role's credentials once when SSM and ECR need them at the same moment", async () => {
    const n = uid();
    const [a, w] = await Promise.all([pushRandomImage(target(ghcr), `acme/imds-${n}`, "1"), pushRandomImage(target(ecr), `imds-${n}`, "1")]);
    // The region is known (the box's config sets awsRegion): both clients ask for credentials at once.
    const b = box();
    const s = spec([
      { name: "web", image: a.reference, registryCredentialId: "rc_gh" },
      { name: "worker", image: w.reference, registryCredentialId: "rc_ecr" },
    ]);
    const role = (c: { target: string }) => /^\/latest\/meta-data\/iam\/security-credentials\/[^/]+$/.test(c.target);
    const before = aws.callsTo("imds").filter(role).length;
    const r = await b.run(["bake", "--spec", b.write("spec.json", s)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(aws.callsTo("imds").filter(role).length - before).toBe(1);
  });
});

describe("credential failures", () => {
  let img: PushedImage;
  beforeAll(async () => {
    img = await pushRandomImage(target(ghcr), `acme/private-${uid()}`, "1");
  });

  async function failingBake(
    setup: (b: Box) => void,
    service: Record<string, unknown> = { name: "api", image: img.reference, registryCredentialId: "rc_gh" },
    credentials?: Record<string, unknown>[],
  ) {
    const b = box({ controlPlane: cp });
    setup(b);
    writeManifestMarker(b);
    const s = spec([service], credentials);
    const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"]);
    const out = parseJsonResult(r);
    const events = cp.deliveries.filter((d) => d.bakeId === s.bakeId).map((d) => d.body);
    return { b, r, out, events, s };
  }

  function writeManifestMarker(b: Box) {
    b.write("marker", "");
  }

  it("a revoked token fails with registry_auth_failed and the registry's words, leaving the manifest untouched", async () => {
    const revoked = "ghp_revoked_" + uid();
    aws.putParameter(`${PREFIX}rc_revoked`, revoked);
    const b0 = box();
    // A previous good bake's manifest must survive the failed one.
    const ok = spec([{ name: "api", image: img.reference, registryCredentialId: "rc_gh" }]);
    expect((await b0.run(["bake", "--spec", b0.write("ok.json", ok)])).code).toBe(0);
    const manifestBefore = readFileSync(path.join(b0.stateDir, "manifest.json"), "utf8");
    const s = spec([{ name: "api", image: img.reference, registryCredentialId: "rc_revoked" }], [{ ...creds.gh, id: "rc_revoked" }]);
    const r = await b0.run(["bake", "--spec", b0.write("bad.json", s), "--json"]);
    expect(r.code).toBe(1);
    const out = parseJsonResult(r);
    expect(out.status).toBe("failed");
    expect(out.services[0]).toMatchObject({ status: "failed", error: { code: "registry_auth_failed", retryable: false } });
    // GHCR refuses a revoked token at its token endpoint: 403 DENIED "denied" (test/stack/refusals.ts).
    expect(out.services[0]!.error!.message).toMatch(/denied: denied/);
    expect(out.services[0]!.error!.registryMessage).toBe("denied: denied");
    expect(out.services[0]!.error!.hint).toMatch(/expired or revoked token/);
    expect(readFileSync(path.join(b0.stateDir, "manifest.json"), "utf8")).toBe(manifestBefore);
    expect(secretLeaks(revoked, b0, r)).toEqual([]);
  });

  it("a wrong username fails with registry_auth_failed", async () => {
    const { r, out, b, events } = await failingBake(() => undefined, undefined, [{ ...creds.gh, username: "acme-bot-typo" }]);
    expect(r.code).toBe(1);
    expect(out.services[0]!.error).toMatchObject({ code: "registry_auth_failed", registryMessage: "denied: denied" });
    expect(events.map((e) => e["type"]).filter(kept)).toEqual(["bake.started", "service.failed", "bake.failed"]);
    expect(events[1]).toMatchObject({ service: "api", error: { code: "registry_auth_failed" } });
    expect(existsSync(path.join(b.stateDir, "manifest.json"))).toBe(false);
    expect(secretLeaks(GH_SECRET, b, r, events)).toEqual([]);
  });

  it("an image on another registry than its credential is refused before anything is fetched", async () => {
    const b = box();
    const before = aws.calls.length;
    const s = spec([{ name: "api", image: `quay.io/acme/api-${uid()}:1`, registryCredentialId: "rc_gh" }]);
    const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"]);
    expect(r.code).toBe(2);
    const out = parseJsonResult(r);
    expect(out.status).toBe("invalid");
    expect(out.violations).toEqual([expect.objectContaining({ path: "services[0].image", code: "registry_mismatch" })]);
    expect(aws.calls.length).toBe(before);
  });

  it("an SSM parameter that is missing, denied or not a SecureString has its own code and AWS's words", async () => {
    aws.putParameter(`${PREFIX}rc_plain`, "plain-text-value", "String");
    const cases: [string, () => void, string, RegExp][] = [
      ["rc_missing", () => undefined, "secret_not_found", /ParameterNotFound.*\/slothbox\/registry-credentials\/rc_missing/],
      ["rc_gh", () => aws.fault({ api: "ssm:GetParameter", kind: "deny" }), "secret_access_denied", /AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role\/slothbox-box\/.* is not authorized to perform: ssm:GetParameter/],
      ["rc_gh", () => aws.fault({ api: "ssm:GetParameter", kind: "deny-kms" }), "secret_access_denied", /kms:Decrypt/],
      ["rc_plain", () => undefined, "secret_not_secure", /is a String, not a SecureString/],
    ];
    for (const [id, fault, code, words] of cases) {
      aws.clearFaults();
      fault();
      const b = box();
      const s = spec([{ name: "api", image: img.reference, registryCredentialId: id }], [{ ...creds.gh, id }]);
      const r = await b.run(["bake", "--spec", b.write("spec.json", s)]);
      expect(r.code, `${id} ${code}`).toBe(1);
      expect(r.stdout).toContain(`error: service api (${img.reference}): ${code}`);
      expect(r.stdout).toMatch(words);
      expect(r.stdout).toMatch(/hint: /);
      expect(secretLeaks("plain-text-value", b, r)).toEqual([]);
    }
  });

  it("a parameterName outside the prefix is refused without any SSM call", async () => {
    const b = box();
    const before = aws.callsTo("ssm:GetParameter").length;
    const s = spec([{ name: "api", image: img.reference, registryCredentialId: "rc_gh" }], [{ ...creds.gh, parameterName: "/prod/db/password" }]);
    const r = await b.run(["bake", "--spec", b.write("spec.json", s)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("registryCredentials[0].parameterName: spec_invalid");
    expect(aws.callsTo("ssm:GetParameter").length).toBe(before);
  });

  it("SSM throttling is retried and the bake succeeds", async () => {
    aws.fault({ api: "ssm:GetParameter", kind: "throttle", times: 1 });
    const b = box();
    const before = aws.callsTo("ssm:GetParameter").length;
    const s = spec([{ name: "api", image: img.reference, registryCredentialId: "rc_gh" }]);
    const r = await b.run(["bake", "--spec", b.write("spec.json", s)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(aws.callsTo("ssm:GetParameter").slice(before).map((c) => c.outcome)).toEqual(["throttle", "ok"]);
  });

  it("an ECR role without ecr:GetAuthorizationToken fails with ecr_access_denied and AWS's words", async () => {
    aws.fault({ api: "ecr:GetAuthorizationToken", kind: "deny" });
    const w = await pushRandomImage(target(ecr), `denied-${uid()}`, "1");
    const b = box();
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "w", image: w.reference, registryCredentialId: "rc_ecr" }])), "--json"]);
    expect(r.code).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e.code).toBe("ecr_access_denied");
    expect(e.message).toMatch(/is not authorized to perform: ecr:GetAuthorizationToken/);
    expect(e.hint).toMatch(/ecr:GetAuthorizationToken/);
  });

  it("an ECR token the registry no longer accepts fails with registry_auth_failed", async () => {
    const w = await pushRandomImage(target(ecr), `expired-${uid()}`, "1");
    aws.ecrPasswords.set(ECR_ACCOUNT, "expired-token-" + uid());
    try {
      const b = box();
      const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "w", image: w.reference, registryCredentialId: "rc_ecr" }])), "--json"]);
      expect(r.code).toBe(1);
      expect(parseJsonResult(r).services[0]!.error).toMatchObject({ code: "registry_auth_failed" });
    } finally {
      aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
    }
  });
});

describe("image failures", () => {
  it("a typo in the repository or the tag is image_not_found with the registry's words", async () => {
    const img = await pushRandomImage(target(ghcr), `acme/typo-${uid()}`, "1");
    const b = box();
    const s = spec([
      { name: "badtag", image: img.reference.replace(/:1$/, ":9.9"), registryCredentialId: "rc_gh" },
      { name: "badrepo", image: img.reference.replace("typo", "tpyo"), registryCredentialId: "rc_gh" },
    ]);
    const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json", "--no-report"], { env: { SLOTHBOX_PULL_CONCURRENCY: "2" } });
    expect(r.code).toBe(1);
    const out = parseJsonResult(r);
    for (const svc of out.services) {
      expect(svc.status).toBe("failed");
      expect(svc.error).toMatchObject({ code: "image_not_found", retryable: false });
      expect(svc.error!.message).toMatch(/manifest unknown|name unknown|not found/);
    }
  });

  it("a private image pulled without a credential is image_not_found with the private-image hint", async () => {
    const img = await pushRandomImage(target(ghcr), `acme/secret-${uid()}`, "1");
    const b = box();
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "api", image: img.reference }])), "--json"]);
    expect(r.code).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e.code, e.message).toBe("image_not_found");
    expect(e.message).toMatch(/pull access denied for ghcr\.io\/acme\/secret-\w+, repository does not exist or may require 'docker login'/);
    expect(e.hint).toMatch(/private/);
  });

  it("after the first failure, images not yet started are skipped", async () => {
    const ok = await pushRandomImage(target(quay), `acme/later-${uid()}`, "1");
    const b = box({ config: { pullConcurrency: 1, pullRetries: 0 } });
    const s = spec([
      { name: "broken", image: `quay.io/acme/missing-${uid()}:1` },
      { name: "later", image: ok.reference },
    ]);
    const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"]);
    expect(r.code).toBe(1);
    expect(parseJsonResult(r).services.map((x) => x.status)).toEqual(["failed", "skipped"]);
  });

  it("a registry that stalls mid-blob fails with pull_timeout within the inactivity timeout", async () => {
    const repo = `acme/stall-${uid()}`;
    // Layers big enough that the engine reports progress mid-layer: the containerd store then
    // repeats the stalled layer's line every 100 ms, which must not count as progress.
    await pushRandomImage(target(quay), repo, "1", { layers: 2, bytes: 4 * 1024 * 1024 });
    const b = box({ config: { pullInactivityTimeoutSeconds: 5, pullTimeoutSeconds: 30, pullRetries: 0 } });
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "s", image: `${stall.host}/${repo}:1` }])), "--json"]);
    expect(r.code).toBe(1);
    const s = parseJsonResult(r).services[0]!;
    expect(s.error).toMatchObject({ code: "pull_timeout", retryable: true });
    expect(s.error!.message).toMatch(/no progress for 5 s/);
    // It ends 5 s after the last sign of progress, which, with every engine's suite
    // running at once, has come 8 s into the pull (the registries slow to start the
    // blobs): measured from the last line the agent printed before it failed.
    const at = (l: string) => Number(/^\[\s*([\d.]+)s\]/.exec(l)?.[1]);
    const lines = r.stderr.split("\n").filter((l) => /^\[\s*[\d.]+s\]/.test(l));
    const failed = lines.findIndex((l) => l.includes("FAILED"));
    const quiet = at(lines[failed]!) - at(lines[failed - 1]!);
    expect(quiet, r.stderr).toBeGreaterThanOrEqual(4.9);
    expect(quiet, r.stderr).toBeLessThan(9);
    expect(s.durationMs, r.stderr).toBeGreaterThanOrEqual(5000);
    // The total timeout (30 s) did not end it.
    expect(r.ms, `${r.stdout}\n${r.stderr}`).toBeLessThan(30_000);
  });

  it("a registry failing with 5xx and then recovering is retried and succeeds", async () => {
    const repo = `acme/flaky-${uid()}`;
    const img = await pushRandomImage(target(quay), repo, "1");
    await injectFault(flaky.url, repo, "unavailable", 2);
    const b = box({ config: { pullRetries: 3 } });
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "f", image: `${flaky.host}/${repo}:1` }]))]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/registry_unreachable .*503.*retrying/);
    expect((await dockerImage(docker, `${flaky.host}/${repo}:1`))?.digests).toContain(img.digest);
  });
});

describe("X-Registry-Auth", () => {
  it("authenticates pulls for every padding length, so a bad header can never become an anonymous pull", async () => {
    for (const [i, u] of stack.awkwardUsers.entries()) {
      const img = await pushRandomImage(target(ghcr), `acme/pad-${i}-${uid()}`, "1");
      const id = `rc_pad${i}`;
      aws.putParameter(`${PREFIX}${id}`, u.password);
      const b = box();
      const s = spec([{ name: "p", image: img.reference, registryCredentialId: id }], [{ id, type: "token", registry: "ghcr.io", username: u.user }]);
      const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(parseJsonResult(r).services[0]).toMatchObject({ status: "pulled", digest: img.digest });
      expect(secretLeaks(u.password, b, r)).toEqual([]);
    }
  });
});
