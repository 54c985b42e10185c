// The command line around the bake: check-credential, exit codes for bad
// usage, spec and configuration, signals, and a control plane that is down.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { ControlPlane, kept } from "../stack/control-plane.ts";
import { pushRandomImage } from "../stack/images.ts";
import { ECR_ACCOUNT } from "../stack/stack.ts";
import { newBox, parseJsonResult, PREFIX, runAgent, secretLeaks, uid, type Box } from "./harness.ts";

const stack = inject("stack");
const aws = new AwsStandIn();
const { ghcr, ecr, quay, stall } = stack.registries;
const boxes: Box[] = [];
const box = (opts: Parameters<typeof newBox>[2] = {}) => {
  const b = newBox(stack, aws, opts);
  boxes.push(b);
  return b;
};
const gh = { id: "rc_gh", type: "token", label: "GHCR (read packages)", registry: "ghcr.io", username: "acme-bot" };
const ecrCred = { id: "rc_ecr", type: "ecr", label: "prod ECR", registry: ecr.host };
const spec = (services: Record<string, unknown>[]) => ({ bakeId: `bk_${uid()}`, orgId: "org_1", registryCredentials: [gh, ecrCred], services });

beforeAll(async () => {
  await aws.start();
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
});
afterAll(async () => {
  for (const b of boxes) b.cleanup();
  await aws.stop();
});

describe("check-credential", () => {
  it("resolves a token credential and logs in, naming it but never the secret", async () => {
    const b = box();
    const f = b.write("spec.json", spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]));
    const r = await b.run(["check-credential", "--spec", f, "--id", "rc_gh"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('credential rc_gh "GHCR (read packages)"');
    expect(r.stdout).toMatch(/type:\s+token/);
    expect(r.stdout).toMatch(/registry:\s+ghcr\.io/);
    expect(r.stdout).toMatch(/username:\s+acme-bot/);
    expect(r.stdout).toMatch(/login:\s+succeeded/);
    expect(secretLeaks(ghcr.password!, b, r)).toEqual([]);
  });

  it("checks an ECR credential through the instance role", async () => {
    const b = box();
    const f = b.write("spec.json", spec([{ name: "w", image: `${ecr.host}/w:1`, registryCredentialId: "rc_ecr" }]));
    const r = await b.run(["check-credential", "--spec", f, "--id", "rc_ecr"]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/login:\s+succeeded \(123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com\)/);
    expect(secretLeaks(ecr.password!, b, r)).toEqual([]);
  });

  it("reports a revoked secret as registry_auth_failed with the registry's words and a hint", async () => {
    aws.putParameter(`${PREFIX}rc_old`, "revoked-" + uid());
    const b = box();
    const f = b.write("spec.json", { ...spec([{ name: "a", image: "ghcr.io/acme/a:1", registryCredentialId: "rc_old" }]), registryCredentials: [{ ...gh, id: "rc_old" }] });
    const r = await b.run(["check-credential", "--spec", f, "--id", "rc_old"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAILED registry_auth_failed/);
    expect(r.stdout).toMatch(/reported:.*denied: denied/);
    expect(r.stdout).toMatch(/hint:\s+Authentication errors usually mean/);
  });

  it("exits 2 with credential_not_found for an id not in the spec", async () => {
    const b = box();
    const f = b.write("spec.json", spec([{ name: "a", image: "redis:7", catalog: true }]));
    const r = await b.run(["check-credential", "--spec", f, "--id", "rc_nope"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("credential_not_found");
  });
});

describe("the SSM region", () => {
  it("comes from IMDSv2 placement/region when neither awsRegion nor AWS_REGION is set", async () => {
    const other = await new AwsStandIn({ region: "eu-west-2" }).start();
    try {
      other.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
      const b = newBox(stack, other, { config: { awsRegion: undefined } });
      boxes.push(b);
      const f = b.write("spec.json", spec([{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }]));
      const r = await b.run(["check-credential", "--spec", f, "--id", "rc_gh"]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(other.calls.map((c) => c.target)).toContain("/latest/meta-data/placement/region");
      expect(other.callsTo("ssm:GetParameter")).toEqual([expect.objectContaining({ region: "eu-west-2", outcome: "ok" })]);
    } finally {
      await other.stop();
    }
  });
});

describe("exit codes for bad input", () => {
  it("exits 2 for usage errors and for a spec that is not JSON (one violation at the root)", async () => {
    const b = box();
    expect((await runAgent(["bake"], b.env)).code).toBe(2);
    expect((await runAgent(["nonsense"], b.env)).code).toBe(2);
    const r = await b.run(["bake", "--spec", b.write("bad.json", "{not json"), "--json"]);
    expect(r.code).toBe(2);
    expect(parseJsonResult(r)).toMatchObject({ status: "invalid", violations: [{ path: "", code: "spec_invalid" }] });
    const missing = await b.run(["bake", "--spec", path.join(b.dir, "nope.json")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("cannot read spec");
  });

  it("exits 78 naming the key for bad configuration, from the file or the environment", async () => {
    const b = box();
    const f = b.write("spec.json", spec([{ name: "a", image: "redis:7", catalog: true }]));
    const env = await b.run(["bake", "--spec", f], { env: { SLOTHBOX_PULL_CONCURRENCY: "lots" } });
    expect(env.code).toBe(78);
    expect(env.stderr).toMatch(/pullConcurrency.*SLOTHBOX_PULL_CONCURRENCY/);
    const bad = b.write("bad-config.json", { stateDir: "relative/path" });
    const file = await runAgent(["bake", "--spec", f, "--config", bad], b.env);
    expect(file.code).toBe(78);
    expect(file.stderr).toContain("stateDir");
    const missing = await runAgent(["bake", "--spec", f, "--config", path.join(b.dir, "missing.json")], b.env);
    expect(missing.code).toBe(78);
  });
});

describe("signals", () => {
  async function interruptedBake(signal: "SIGTERM" | "SIGINT", opts: { json?: boolean; controlPlane?: ControlPlane }) {
    const repo = `acme/sig-${uid()}`;
    await pushRandomImage(quay.push, repo, "1", { layers: 1, bytes: 512 * 1024 });
    const b = box({ ...(opts.controlPlane ? { controlPlane: opts.controlPlane } : {}), config: { pullInactivityTimeoutSeconds: 60 } });
    const s = spec([{ name: "s", image: `${stall.host}/${repo}:1` }]);
    let sent = false;
    const r = await b.run(["bake", "--spec", b.write("spec.json", s), ...(opts.json ? ["--json"] : [])], {
      onOutput: (chunk, kill) => {
        if (!sent && chunk.includes("pulling")) {
          sent = true;
          setTimeout(() => kill(signal), 300);
        }
      },
    });
    const outbox = path.join(b.stateDir, "outbox");
    const waiting = existsSync(outbox) ? readdirSync(outbox).filter((x) => x.endsWith(".json")).sort() : [];
    const events = waiting.map((f) => JSON.parse(readFileSync(path.join(outbox, f), "utf8")).event as Record<string, unknown>);
    return { b, r, s, events };
  }

  it("SIGTERM during a pull aborts it, writes no manifest, writes bake.failed with code interrupted to the outbox, and exits 143", async () => {
    const cp = await new ControlPlane("tok-" + uid()).start();
    await cp.stop();
    const { b, r, events } = await interruptedBake("SIGTERM", { controlPlane: cp });
    expect(r.code, r.stdout + r.stderr).toBe(143);
    expect(r.ms).toBeLessThan(15_000);
    expect(existsSync(path.join(b.stateDir, "manifest.json"))).toBe(false);
    expect(events.map((e) => e["type"]).filter(kept)).toEqual(["bake.started", "service.failed", "bake.failed"]);
    expect(events[1]).toMatchObject({ service: "s", error: { code: "interrupted", retryable: true } });
    expect(events[2]).toMatchObject({ error: { code: "interrupted", retryable: true, message: expect.stringContaining("SIGTERM") } });
    expect(r.stdout).toMatch(/error: service s \(.*\): interrupted \(retryable\)/);
    expect(r.stdout).toMatch(/bake bk_\w+ failed/);
    expect(r.stdout).toMatch(/events: 0 delivered to .*; 3 waiting in .*outbox/);
    expect(secretLeaks(cp.token, b, r)).toEqual([]);
  });

  it("SIGINT exits 130, answers --json with one object, and sends the events when the control plane answers", async () => {
    const cp = await new ControlPlane("tok-" + uid()).start();
    try {
      const { b, r, s, events } = await interruptedBake("SIGINT", { json: true, controlPlane: cp });
      expect(r.code, r.stdout + r.stderr).toBe(130);
      const out = parseJsonResult(r);
      expect(out).toMatchObject({ bakeId: s.bakeId, status: "failed" });
      expect(out.services).toEqual([expect.objectContaining({ name: "s", status: "failed", error: expect.objectContaining({ code: "interrupted", retryable: true }) })]);
      expect(events).toEqual([]);
      expect(cp.accepted().filter((e) => e["bakeId"] === s.bakeId).map((e) => e["type"]).filter(kept)).toEqual(["bake.started", "service.failed", "bake.failed"]);
      expect(cp.accepted().find((e) => e["bakeId"] === s.bakeId && e["type"] === "bake.failed")).toMatchObject({ error: { code: "interrupted", message: expect.stringContaining("SIGINT") } });
      expect(secretLeaks(cp.token, b, r, cp.accepted())).toEqual([]);
    } finally {
      await cp.stop();
    }
  });
});

describe("a control plane that is down", () => {
  it("costs at most ~10 s, never fails the bake, and leaves every event in the outbox", async () => {
    const img = await pushRandomImage(quay.push, `acme/cpdown-${uid()}`, "1");
    const cp = await new ControlPlane("tok-" + uid()).start();
    await cp.stop();
    const b = box({ controlPlane: cp });
    const r = await b.run(["bake", "--spec", b.write("spec.json", spec([{ name: "a", image: img.reference }]))]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // What the control plane being down adds to the bake (a loaded machine slows the bake itself, not this).
    const bakeMs = Number(/succeeded in (\d+\.\d)s/.exec(r.stdout)?.[1]) * 1000;
    expect(r.ms - bakeMs).toBeLessThan(12_000);
    expect(r.stdout).toMatch(/events: 0 delivered to http:\/\/127\.0\.0\.1:\d+; 3 waiting in .*outbox for the daemon to deliver/);
    const outbox = readdirSync(path.join(b.stateDir, "outbox")).filter((x) => x.endsWith(".json"));
    expect(outbox).toHaveLength(3);
    expect(secretLeaks(cp.token, b, r)).toEqual([]);
  });

  it("is retried within the bake when it answers 503 once", async () => {
    const img = await pushRandomImage(quay.push, `acme/cpflap-${uid()}`, "1");
    const cp = await new ControlPlane("tok-" + uid()).start();
    cp.failNext(1, 503);
    const b = box({ controlPlane: cp });
    const s = spec([{ name: "a", image: img.reference }]);
    const r = await b.run(["bake", "--spec", b.write("spec.json", s)]);
    expect(r.code).toBe(0);
    expect(cp.accepted().map((e) => e["type"]).filter(kept)).toEqual(["bake.started", "service.pulled", "bake.succeeded"]);
    expect(cp.deliveries.filter((d) => d.status === 503)).toHaveLength(1);
    await cp.stop();
  });
});
