// No secret anywhere, whatever the environment (SPEC §6, §9): debug switches of
// the agent's libraries and of Node itself, the most verbose log level, and
// registries whose username is the secret (DigitalOcean), in every command.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { ControlPlane } from "../stack/control-plane.ts";
import { pushRandomImage } from "../stack/images.ts";
import { ECR_ACCOUNT } from "../stack/stack.ts";
import { newBox, parseJsonResult, PREFIX, secretLeaks, uid, type Box } from "./harness.ts";

const stack = inject("stack");
const aws = new AwsStandIn();
const cp = new ControlPlane("cp-" + uid());
const { ghcr, ecr, digitalocean } = stack.registries;
const boxes: Box[] = [];
const box = (opts: Parameters<typeof newBox>[2] = {}) => {
  const b = newBox(stack, aws, opts);
  boxes.push(b);
  return b;
};

beforeAll(async () => {
  await aws.start();
  await cp.start();
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
});
afterAll(async () => {
  for (const b of boxes) b.cleanup();
  await aws.stop();
  await cp.stop();
});

describe("debug switches and the most verbose log level", () => {
  it("print no secret: DEBUG=*, NODE_DEBUG=* and logLevel trace on a bake and on check-credential", async () => {
    const n = uid();
    const [api, worker] = await Promise.all([pushRandomImage(ghcr.push, `acme/dbg-${n}`, "1"), pushRandomImage(ecr.push, `dbg-${n}`, "1")]);
    const b = box({ controlPlane: cp, config: { logLevel: "trace" } });
    const s = {
      bakeId: `bk_${n}`,
      orgId: "o",
      registryCredentials: [
        { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" },
        { id: "rc_ecr", type: "ecr", registry: ecr.host },
      ],
      services: [
        { name: "api", image: api.reference, registryCredentialId: "rc_gh" },
        { name: "worker", image: worker.reference, registryCredentialId: "rc_ecr" },
      ],
    };
    const env = { DEBUG: "*", NODE_DEBUG: "*" };
    const f = b.write("spec.json", s);
    const bake = await b.run(["bake", "--spec", f], { env });
    expect(bake.code, bake.stdout + bake.stderr).toBe(0);
    const check = await b.run(["check-credential", "--spec", f, "--id", "rc_gh"], { env });
    expect(check.code, check.stdout + check.stderr).toBe(0);
    // The switches did switch something on: Node's own debug output is there.
    expect(bake.stderr).toMatch(/^(HTTP|NET|STREAM|TIMER)[ _A-Z]* \d+:/m);
    const events = cp.accepted();
    for (const secret of [ghcr.password!, ecr.password!, cp.token]) expect(secretLeaks(secret, b, [bake, check], events)).toEqual([]);
  });
});

describe("a registry whose username is the secret (DigitalOcean)", () => {
  it("never prints the username, not even when the secret cannot be fetched", async () => {
    const b = box();
    const oldToken = "dop_v1_" + uid().repeat(8);
    const f = b.write("spec.json", {
      bakeId: `bk_${uid()}`,
      orgId: "o",
      registryCredentials: [{ id: "rc_do_missing", type: "token", registry: "registry.digitalocean.com", username: oldToken }],
      services: [{ name: "app", image: "registry.digitalocean.com/acme/app:1", registryCredentialId: "rc_do_missing" }],
    });
    const check = await b.run(["check-credential", "--spec", f, "--id", "rc_do_missing"]);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain("secret_not_found");
    const bake = await b.run(["bake", "--spec", f, "--json"]);
    expect(parseJsonResult(bake).services[0]!.error?.code).toBe("secret_not_found");
    expect(secretLeaks(oldToken, b, [check, bake])).toEqual([]);
  });

  it("bakes with a rotated token (the spec's username is the old one) and prints neither", async () => {
    const img = await pushRandomImage(digitalocean.push, `acme/rot-${uid()}`, "1");
    const id = `rc_do_${uid()}`;
    aws.putParameter(`${PREFIX}${id}`, digitalocean.password!);
    const oldToken = "dop_v1_" + uid().repeat(8);
    const b = box();
    const r = await b.run([
      "bake",
      "--spec",
      b.write("spec.json", {
        bakeId: `bk_${uid()}`,
        orgId: "o",
        registryCredentials: [{ id, type: "token", registry: "registry.digitalocean.com", username: oldToken }],
        services: [{ name: "app", image: img.reference, registryCredentialId: id }],
      }),
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("[REDACTED]");
    for (const secret of [oldToken, digitalocean.password!]) expect(secretLeaks(secret, b, r)).toEqual([]);
  });
});
