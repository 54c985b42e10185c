// No secret anywhere, whatever the environment (SPEC §6, §9): debug switches of
// the agent's libraries and of Node itself, the most verbose log level, and
// registries whose username is the secret (DigitalOcean), in every command. The
// instance role's credentials are searched for like any secret.
import { spawn } from "node:child_process";
import { describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { pushRandomImage } from "../stack/images.ts";
import { ECR_ACCOUNT } from "../stack/stack.ts";
import { newBox, parseJsonResult, PREFIX, secretLeaks, uid } from "./harness.ts";
import { awsAndControlPlane } from "./lifecycle.ts";
import { leaksIn } from "./secret-forms.ts";

const stack = inject("stack");
const { aws, cp, boxes } = awsAndControlPlane(() => {
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
});
const { ghcr, ecr, digitalocean } = stack.registries;
const box = (opts: Parameters<typeof newBox>[2] = {}) => {
  const b = newBox(stack, aws, opts);
  boxes.push(b);
  return b;
};

/** The instance role's key id, secret key and session token of every session IMDS handed out: secrets too. */
function roleSecrets(): string[] {
  const issued = aws.issuedCredentials();
  expect(issued.length).toBeGreaterThan(0);
  return issued.flatMap((c) => [c.accessKeyId, c.secretAccessKey, c.sessionToken]);
}

describe("debug switches and the most verbose log level", () => {
  // Node takes NODE_DEBUG's value once, at start-up (internal/util/debuglog.js,
  // initializeDebugEnv): unsetting it from the agent's own code leaves `net` and
  // `http` debugging on (the next test), and NODE_OPTIONS has loaded its code
  // before the agent's first line runs. So the agent refuses to run at all
  // (exit 78, SPEC §3) rather than re-exec itself from a process that already
  // has them; the unit and the launcher drop both.
  it("Node keeps debugging once started with NODE_DEBUG, whatever the process does to its environment", async () => {
    const script = "delete process.env.NODE_DEBUG; const s = require('node:net').createServer().listen(0, '127.0.0.1', () => s.close());";
    const stderr = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["-e", script], { env: { PATH: process.env["PATH"] ?? "", NODE_DEBUG: "net" }, stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      child.stderr.on("data", (c: Buffer) => (err += c.toString()));
      child.on("error", reject);
      child.on("exit", () => resolve(err));
    });
    expect(stderr).toMatch(/^NET \d+: /m);
  });

  it.each([
    ["NODE_DEBUG=net", { NODE_DEBUG: "net" }, "NODE_DEBUG"],
    ["NODE_DEBUG=*", { NODE_DEBUG: "*" }, "NODE_DEBUG"],
    ["NODE_OPTIONS=--trace-warnings", { NODE_OPTIONS: "--trace-warnings" }, "NODE_OPTIONS"],
    ["both", { NODE_DEBUG: "http", NODE_OPTIONS: "--trace-warnings" }, "NODE_DEBUG"],
  ])("refuse to run under %s, in one sentence, before any AWS call", async (how, env, named) => {
    const b = box({ controlPlane: cp });
    const f = b.write("spec.json", {
      bakeId: `bk_${uid()}`,
      orgId: "o",
      registryCredentials: [{ id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" }],
      services: [{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }],
    });
    const calls = aws.calls.length;
    const deliveries = cp.accepted().length;
    for (const args of [["bake", "--spec", f], ["check-credential", "--spec", f, "--id", "rc_gh"], ["daemon"], ["--version"]]) {
      const r = await b.run(args, { env });
      expect(r.code, r.stdout + r.stderr).toBe(78);
      expect(r.stdout).toBe("");
      // Under NODE_DEBUG=* Node prints its own start-up and exit (modules, timers) around the agent's one line.
      const lines = r.stderr.trim().split("\n");
      if (how !== "NODE_DEBUG=*") expect(lines).toHaveLength(1);
      const errors = lines.filter((l) => /error/i.test(l));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(new RegExp(`^error: refusing to run with ${named} set: .*NODE_DEBUG and NODE_OPTIONS.*; unset them\\.$`));
    }
    expect(aws.calls.length).toBe(calls);
    expect(cp.accepted().length).toBe(deliveries);
  });

  it("runs with NODE_DEBUG and NODE_OPTIONS set but empty (nothing switched on), and with NODE_EXTRA_CA_CERTS", async () => {
    const b = box();
    const ca = b.write("ca.pem", stack.registries.dockerhub.push.ca!);
    const r = await b.run(["--version"], { env: { NODE_DEBUG: "", NODE_OPTIONS: "", NODE_EXTRA_CA_CERTS: ca } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^slothbox-agent \S+\n$/);
  });

  it("print no secret, the instance role's credentials included: DEBUG=* and logLevel trace on a bake and on check-credential", async () => {
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
    const env = { DEBUG: "*" };
    const f = b.write("spec.json", s);
    const bake = await b.run(["bake", "--spec", f], { env });
    expect(bake.code, bake.stdout + bake.stderr).toBe(0);
    const check = await b.run(["check-credential", "--spec", f, "--id", "rc_gh"], { env });
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const events = cp.accepted();
    for (const secret of [ghcr.password!, ecr.password!, cp.token, ...roleSecrets()]) expect(secretLeaks(secret, b, [bake, check], events)).toEqual([]);
  });
});

describe("the instance role's credentials in AWS's own words", () => {
  // AWS's answer to a signature it computes differently quotes the canonical
  // request it expected, the x-amz-security-token header with its value.
  it("are removed from a signature mismatch that quotes the session token, on a bake and on check-credential", async () => {
    const standIn = await new AwsStandIn().start();
    try {
      standIn.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
      standIn.fault({ api: "ssm:GetParameter", kind: "signature-mismatch" });
      const b = newBox(stack, standIn, { controlPlane: cp, config: { pullRetries: 0 } });
      boxes.push(b);
      const f = b.write("spec.json", {
        bakeId: `bk_${uid()}`,
        orgId: "o",
        registryCredentials: [{ id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" }],
        services: [{ name: "api", image: "ghcr.io/acme/api:1", registryCredentialId: "rc_gh" }],
      });
      const check = await b.run(["check-credential", "--spec", f, "--id", "rc_gh"]);
      expect(check.code, check.stdout + check.stderr).toBe(1);
      const bake = await b.run(["bake", "--spec", f, "--json"]);
      expect(parseJsonResult(bake).services[0]!.error?.message).toContain("The Canonical String for this request should have been");
      for (const r of [check, bake]) expect(r.stdout + r.stderr).toContain("x-amz-security-token:[REDACTED]");
      const issued = standIn.issuedCredentials();
      expect(issued.length).toBeGreaterThan(0);
      const events = cp.accepted();
      for (const c of issued) for (const secret of [c.accessKeyId, c.secretAccessKey, c.sessionToken]) expect(secretLeaks(secret, b, [check, bake], events)).toEqual([]);
    } finally {
      await standIn.stop();
    }
  });
});

describe("a registry whose username is the secret (DigitalOcean)", () => {
  // HTTPS's default port names the same registry: its username is the token there too.
  it.each(["registry.digitalocean.com", "registry.digitalocean.com:443"])("never prints the username on %s, not even when the secret cannot be fetched", async (host) => {
    const b = box();
    const oldToken = "dop_v1_" + uid().repeat(8);
    const f = b.write("spec.json", {
      bakeId: `bk_${uid()}`,
      orgId: "o",
      registryCredentials: [{ id: "rc_do_missing", type: "token", registry: host, username: oldToken }],
      services: [{ name: "app", image: `${host}/acme/app:1`, registryCredentialId: "rc_do_missing" }],
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

describe("the leak checker (its own list of forms, never the scrubber's)", () => {
  const secret = "ghp_Ch3ck!er'(forms)* \"q\" & <more>/+=" + "x".repeat(40);
  const wrap = (s: string, n: number) => s.match(new RegExp(`.{1,${n}}`, "g"))!.join("\n");
  const percent = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  it.each([
    ["raw", secret],
    ["JSON-escaped", JSON.stringify(secret)],
    ["JSON-escaped twice", JSON.stringify(JSON.stringify(secret))],
    ["URL-encoded, lower-case hex", encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (x) => x.toLowerCase())],
    ["Go's url.QueryEscape", percent(secret).replace(/%20/g, "+")],
    ["Go's url.PathEscape", percent(secret).replace(/%(24|26|2B|3A|3D|40)/g, (x) => decodeURIComponent(x))],
    ...[0, 1, 2].map((n): [string, string] => [`base64 after ${n} bytes`, Buffer.from("u".repeat(n) + ":" + secret).toString("base64")]),
    ["base64url of a JSON body", Buffer.from(JSON.stringify({ username: "u", password: secret })).toString("base64url")],
    ["base64 wrapped at 76 columns", wrap(Buffer.from("user:" + secret).toString("base64"), 76)],
    ["hex wrapped at 64 columns, upper-case", wrap(Buffer.from(secret).toString("hex").toUpperCase(), 64)],
    ["a Buffer as Node prints it", Buffer.from(secret).toString("hex").replace(/(..)(?!$)/g, "$1 ")],
    ["UTF-16LE bytes", Buffer.from(secret, "utf16le").toString("latin1")],
  ])("finds a secret %s", (_how, text) => {
    expect(leaksIn(`before\n${text}\nafter`, secret)).not.toEqual([]);
  });

  it("finds nothing where the secret is not", () => {
    expect(leaksIn(`[REDACTED] ${Buffer.from("user:other").toString("base64")}`, secret)).toEqual([]);
  });
});
