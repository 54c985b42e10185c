// Packer: both templates validate with the machine's Packer (1.6.6), and a real
// `packer build` of the local template installs the packaged agent and bakes
// against the stack; a revoked token fails the build with Docker's words.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { ControlPlane, kept } from "../stack/control-plane.ts";
import { pushRandomImage } from "../stack/images.ts";
import { filesUnder, PREFIX, ROOT, uid } from "../e2e/harness.ts";

const stack = inject("stack");
const { ghcr, quay } = stack.registries;
const aws = new AwsStandIn();
const work = mkdtempSync(path.join(os.tmpdir(), "sbx-packer-"));
const VERSION = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).version as string;
const PACKAGE = path.join(ROOT, "dist", `slothbox-agent-${VERSION}-linux-x64.tar.gz`);

function packer(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn("packer", args, {
      cwd: ROOT,
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: path.join(work, "home"), CHECKPOINT_DISABLE: "1", PACKER_CACHE_DIR: path.join(work, "cache"), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.on("data", (c: Buffer) => (out += c.toString()));
    p.stderr.on("data", (c: Buffer) => (out += c.toString()));
    p.on("exit", (code) => resolve({ code, out }));
  });
}

function hclString(s: string): string {
  return JSON.stringify(s);
}

beforeAll(async () => {
  execFileSync(process.execPath, [path.join(ROOT, "scripts/package.mjs"), "--arch", "x64"], { cwd: ROOT, stdio: "ignore" });
  await aws.start();
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
}, 120_000);
afterAll(async () => {
  await aws.stop();
  rmSync(work, { recursive: true, force: true });
});

/**
 * The AWS template as Packer 1.6.6 can validate it, written to `name` in the work dir: that Packer
 * predates metadata_options (and required_plugins), so the IMDSv2 block goes (it is checked as text).
 */
function legacyAwsTemplate(name: string): string {
  const aws = readFileSync(path.join(ROOT, "packer/aws/box.pkr.hcl"), "utf8");
  const legacy = aws.replace(/\n {2}# IMDSv2 only[^\n]*\n(?: {2}#[^\n]*\n)* {2}metadata_options \{[\s\S]*?\n {2}\}\n/, "\n").replaceAll("${path.root}/../scripts/", path.join(ROOT, "packer/scripts") + "/");
  expect(legacy).not.toContain("metadata_options");
  const file = path.join(work, name);
  writeFileSync(file, legacy);
  return file;
}

describe("packer validate", () => {
  it("validates the AWS template (required_plugins kept apart; IMDSv2 block checked as text for Packer 1.6.6)", async () => {
    const aws = readFileSync(path.join(ROOT, "packer/aws/box.pkr.hcl"), "utf8");
    expect(aws).toMatch(/metadata_options \{\s+http_endpoint\s+= "enabled"\s+http_tokens\s+= "required"\s+http_put_response_hop_limit = 1\s+\}/);
    expect(aws).toMatch(/iam_instance_profile = var\.iam_instance_profile/);
    expect(readFileSync(path.join(ROOT, "packer/aws/plugins.pkr.hcl"), "utf8")).toContain("required_plugins");
    const file = legacyAwsTemplate("aws-legacy.pkr.hcl");
    const packages = path.join(work, "packages");
    mkdirSync(packages, { recursive: true });
    for (const f of ["slothbox-agent-9.9.9-linux-x64.tar.gz", "slothbox-agent-9.9.9-linux-arm64.tar.gz"]) for (const g of [f, `${f}.sha256`]) writeFileSync(path.join(packages, g), "{}");
    for (const f of ["agent.json", "spec.json"]) writeFileSync(path.join(work, f), "{}");
    for (const architecture of ["x86_64", "arm64"]) {
      const r = await packer([
        "validate",
        "-var", "iam_instance_profile=slothbox-box",
        "-var", `architecture=${architecture}`,
        "-var", `agent_package_dir=${packages}`,
        "-var", `agent_config=${path.join(work, "agent.json")}`,
        "-var", `bake_spec=${path.join(work, "spec.json")}`,
        file,
      ]);
      expect(r.out).toBe("");
      expect(r.code).toBe(0);
    }
  });

  it("refuses an architecture EC2 does not name (aarch64) with the variable's own words", async () => {
    const file = legacyAwsTemplate("aws-arch.pkr.hcl");
    const r = await packer(["validate", "-var", "iam_instance_profile=x", "-var", "architecture=aarch64", "-var", `agent_package_dir=${work}`, "-var", "agent_config=/x", "-var", "bake_spec=/x", file]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("The architecture must be x86_64 or arm64 (Graviton), as EC2 names them.");
  });

  it("picks Debian's AMI, the instance type and the agent package from the box's architecture", async () => {
    const aws = readFileSync(path.join(ROOT, "packer/aws/box.pkr.hcl"), "utf8");
    expect(aws).toContain('name                = "debian-12-${local.debian_arch}-*"');
    expect(aws).toContain("architecture        = var.architecture");
    expect(aws).toContain('debian_arch   = local.arm64 ? "arm64" : "amd64"');
    expect(aws).toContain('fileset(var.agent_package_dir, "slothbox-agent-*-linux-${local.arm64 ? "arm64" : "x64"}.tar.gz")');
    expect(aws).toContain('(local.arm64 ? "t4g.medium" : "t3.medium")');
    // The package provisioners upload the one picked, and its checksum.
    expect(aws).toMatch(/source\s+= local\.agent_package\n\s+destination = "\/tmp\/slothbox-agent\.tar\.gz"/);
    expect(aws).toMatch(/source\s+= "\$\{local\.agent_package\}\.sha256"/);
  });

  it("uploads the build's token and spec only to a tmpfs under /run, never to the root volume the AMI is made from", () => {
    const aws = readFileSync(path.join(ROOT, "packer/aws/box.pkr.hcl"), "utf8");
    const blocks = [...aws.matchAll(/provisioner "(file|shell)" \{\n([\s\S]*?)\n {2}\}\n/g)].map((m) => ({ kind: m[1]!, body: m[2]! }));
    const uploads = blocks.filter((b) => b.kind === "file").map((b) => ({ source: /source\s+= (.+)/.exec(b.body)![1]!, destination: JSON.parse(/destination = (".+")/.exec(b.body)![1]!) as string, at: blocks.indexOf(b) }));
    const secret = uploads.filter((u) => /var\.(control_plane_token_file|bake_spec)\b/.test(u.source));
    expect(secret).toHaveLength(2);
    for (const u of secret) expect(path.dirname(u.destination)).toBe("/run/slothbox-bake");
    // Made before the first upload into it: root-owned /run is not writable by the SSH user, and the directory is checked to be a tmpfs.
    const made = blocks.findIndex((b) => b.kind === "shell" && b.body.includes("install -d -m 0700") && b.body.includes("/run/slothbox-bake"));
    expect(made).toBeGreaterThanOrEqual(0);
    expect(made).toBeLessThan(Math.min(...secret.map((u) => u.at)));
    expect(blocks[made]!.body).toContain("stat -f -c %T /run/slothbox-bake");
    expect(blocks[made]!.body).toContain('= tmpfs ]');
    // Nothing of the token or the spec is named under /tmp (on the root volume) anywhere in the template.
    expect(aws).not.toMatch(/\/tmp\/[\w.-]*(token|spec)/);
    const bake = blocks.find((b) => b.kind === "shell" && b.body.includes("bake-step.sh"))!.body;
    expect(bake).toContain('"ulimit -c 0"');
    expect(bake).toContain("sh /tmp/slothbox-bake-step.sh /usr/local/bin/slothbox-agent /run/slothbox-bake/bake-spec.json ");
    // Behind a proxy: the build's proxy settings reach the agent through sudo, and only the bake step's environment.
    expect(bake).toContain("environment_vars = var.bake_environment");
    expect(bake).toContain('"sudo --preserve-env=HTTPS_PROXY,HTTP_PROXY,NO_PROXY,https_proxy,http_proxy,no_proxy,NODE_EXTRA_CA_CERTS env SLOTHBOX_BAKE_TOKEN_FILE=');
    expect(bake).toContain("SLOTHBOX_BAKE_TOKEN_FILE=/run/slothbox-bake/control-plane-token ");
    // The build instance's region, which IMDS would answer: the SSM client needs no IMDS round for it (issue 26).
    expect(bake).toContain(" AWS_REGION=${var.region} sh /tmp/slothbox-bake-step.sh ");
    // Removed whether the bake succeeded or failed.
    expect(bake).toContain("|| { rc=$?; sudo rm -rf /run/slothbox-bake; exit $rc; }");
    expect(bake).toContain('"sudo rm -rf /run/slothbox-bake"');
  });

  it("validates the local template", async () => {
    const r = await packer(["validate", "-var", "install_root=/tmp/x", "-var", "agent_package=/x", "-var", "agent_config=/x", "-var", "bake_spec=/x", "packer/local/box.pkr.hcl"]);
    expect(r.out).toBe("");
    expect(r.code).toBe(0);
  });
});

describe("packer build of the local template", () => {
  async function build(credentialSecret: string, opts: { controlPlane?: ControlPlane } = {}) {
    const n = uid();
    const dir = path.join(work, n);
    const id = `rc_${n}`;
    aws.putParameter(`${PREFIX}${id}`, credentialSecret);
    const [api, cache] = await Promise.all([
      pushRandomImage(ghcr.push, `acme/pk-${n}`, "1"),
      pushRandomImage(quay.push, `acme/pkc-${n}`, "1"),
    ]);
    const stateDir = path.join(dir, "state");
    const files = {
      spec: path.join(work, `spec-${n}.json`),
      config: path.join(work, `agent-${n}.json`),
      vars: path.join(work, `vars-${n}.pkrvars.hcl`),
    };
    writeFileSync(
      files.spec,
      JSON.stringify({
        bakeId: `bk_${n}`,
        orgId: "org_1",
        registryCredentials: [{ id, type: "token", registry: "ghcr.io", username: "acme-bot" }],
        services: [
          { name: "api", image: api.reference, registryCredentialId: id },
          { name: "cache", image: cache.reference, catalog: true },
        ],
      }),
    );
    // The config a baked image carries: the control plane's address, but no box's identity or token.
    writeFileSync(
      files.config,
      JSON.stringify({ stateDir, dockerSocket: stack.dockerHost, awsRegion: "us-east-1", pullRetries: 0, ...(opts.controlPlane ? { controlPlaneUrl: opts.controlPlane.url } : {}) }),
    );
    const tokenFile = path.join(work, `cp-token-${n}`);
    if (opts.controlPlane) writeFileSync(tokenFile, opts.controlPlane.token, { mode: 0o600 });
    const env = Object.entries(aws.env()).map(([k, v]) => `${k}=${v}`);
    writeFileSync(
      files.vars,
      [
        `agent_package = ${hclString(PACKAGE)}`,
        `install_root = ${hclString(path.join(dir, "root"))}`,
        `agent_config = ${hclString(files.config)}`,
        `bake_spec = ${hclString(files.spec)}`,
        `environment = [${env.map(hclString).join(", ")}]`,
        ...(opts.controlPlane ? [`control_plane_token_file = ${hclString(tokenFile)}`, `bake_box_id = "packer-${n}"`] : []),
      ].join("\n"),
    );
    const r = await packer(["build", "-color=false", `-var-file=${files.vars}`, "packer/local/box.pkr.hcl"]);
    return { ...r, stateDir, dir, api, bakeId: `bk_${n}`, boxId: `packer-${n}` };
  }

  it("installs the package and bakes: exit 0 and the manifest written", async () => {
    const r = await build(ghcr.password!);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("sha256");
    expect(r.out).toContain("verified");
    expect(r.out).toMatch(/bake bk_\w+ succeeded/);
    const manifest = JSON.parse(readFileSync(path.join(r.stateDir, "manifest.json"), "utf8"));
    expect(manifest.services.map((s: { name: string; digest: string }) => [s.name, s.digest])).toEqual([
      ["api", r.api.digest],
      ["cache", expect.stringMatching(/^sha256:/)],
    ]);
    expect(r.out).not.toContain(ghcr.password!);
    expect(filesUnder(r.stateDir).some((f) => f.text.includes(ghcr.password!))).toBe(false);
  });

  it("reports the bake to the control plane with the token the build provides, and bakes no token into the image", async () => {
    const cp = await new ControlPlane("cp-packer-" + uid()).start();
    try {
      const r = await build(ghcr.password!, { controlPlane: cp });
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`reporting this bake as box ${r.boxId}`);
      const events = cp.deliveries.filter((d) => d.bakeId === r.bakeId);
      expect(events.map((d) => d.body["type"]).filter(kept)).toEqual(["bake.started", "service.pulled", "service.pulled", "bake.succeeded"]);
      expect(events.every((d) => d.boxId === r.boxId && d.status === 202)).toBe(true);
      expect(r.out).toMatch(/events: 4 delivered/);
      // The local build's image is its install root: neither the token nor the spec lands there.
      const installed = filesUnder(path.join(r.dir, "root"));
      expect(installed.some((f) => f.text.includes(cp.token) || f.text.includes(r.bakeId))).toBe(false);
      expect(readFileSync(path.join(r.dir, "root/etc/slothbox/agent.json"), "utf8")).not.toContain("boxId");
      expect(r.out).not.toContain(cp.token);
    } finally {
      await cp.stop();
    }
  });

  it("refuses an agent config that would bake one box's identity into the image", async () => {
    const n = uid();
    const config = path.join(work, `agent-boxid-${n}.json`);
    writeFileSync(config, JSON.stringify({ boxId: "box-1", dockerSocket: stack.dockerHost }));
    const vars = path.join(work, `vars-boxid-${n}.pkrvars.hcl`);
    writeFileSync(vars, [`agent_package = ${hclString(PACKAGE)}`, `install_root = ${hclString(path.join(work, n, "root"))}`, `agent_config = ${hclString(config)}`, `bake_spec = ${hclString(config)}`].join("\n"));
    const r = await packer(["build", "-color=false", `-var-file=${vars}`, "packer/local/box.pkr.hcl"]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("a baked image serves many boxes");
  });

  it("fails the build when a token is revoked, with the error code and Docker's words in Packer's output", async () => {
    const revoked = "ghp_revoked_" + uid();
    const r = await build(revoked);
    if (process.env["SHOW_PACKER"]) console.log(r.out);
    expect(r.code).toBe(1);
    expect(r.out).toContain("registry_auth_failed");
    // GHCR's words for a revoked token (test/stack/refusals.ts), as Docker reports them.
    expect(r.out).toContain("denied: denied");
    expect(r.out).toContain("no artifacts were created");
    expect(r.out).not.toContain(revoked);
    expect(existsSync(path.join(r.stateDir, "manifest.json"))).toBe(false);
  });
});
