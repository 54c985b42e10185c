// Every registry the platform supports, under its real host name, with its real
// credential form and auth flow (bearer tokens from a token server; ECR's basic
// auth with an instance-role token; Docker Hub over verified TLS): a bake with
// the credential succeeds, a wrong secret fails with registry_auth_failed and
// the registry's own words, a private image without a credential is
// image_not_found with the hint, and no secret leaks.
import Docker from "dockerode";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { pushRandomImage, type PushedImage } from "../stack/images.ts";
import { ECR_ACCOUNT, type RegistryInfo } from "../stack/stack.ts";
import { newBox, parseJsonResult, PREFIX, secretLeaks, uid, type Box } from "./harness.ts";

const stack = inject("stack");
const docker = new Docker({ socketPath: stack.socketPath });
const aws = new AwsStandIn();
const R = stack.registries;
const boxes: Box[] = [];
const box = () => {
  const b = newBox(stack, aws, { config: { pullRetries: 0 } });
  boxes.push(b);
  return b;
};

interface Case {
  name: string;
  reg: RegistryInfo;
  /** The credential's `registry` as a user would enter it. */
  registry: string;
  /** Repository, in a namespace the credential may read. */
  repo: string;
  /** How the spec writes the image's registry part ("" for none). */
  prefix: string;
  type?: "ecr";
  /** The registry's own words for a wrong secret. */
  refused: RegExp;
}

const TOKEN_REFUSAL = /unauthorized: incorrect username or password/;
const CASES: Case[] = [
  { name: "Docker Hub", reg: R.dockerhub, registry: "docker.io", repo: "acme/tool", prefix: "", refused: TOKEN_REFUSAL },
  { name: "GitHub (GHCR)", reg: R.ghcr, registry: "ghcr.io", repo: "acme/api", prefix: "ghcr.io/", refused: TOKEN_REFUSAL },
  { name: "Google GCR (_json_key)", reg: R.gcr, registry: "gcr.io", repo: "acme-project/app", prefix: "gcr.io/", refused: TOKEN_REFUSAL },
  {
    name: "Artifact Registry (_json_key_base64)",
    reg: R.pkgdev,
    registry: "europe-west1-docker.pkg.dev",
    repo: "acme-project/containers/app",
    prefix: "europe-west1-docker.pkg.dev/",
    refused: TOKEN_REFUSAL,
  },
  { name: "Red Hat Quay (robot)", reg: R.quay, registry: "quay.io", repo: "acmecorp/app", prefix: "quay.io/", refused: TOKEN_REFUSAL },
  { name: "DigitalOcean (token as user and secret)", reg: R.digitalocean, registry: "registry.digitalocean.com", repo: "acme/app", prefix: "registry.digitalocean.com/", refused: TOKEN_REFUSAL },
  { name: "Azure ACR", reg: R.acr, registry: "acme.azurecr.io", repo: "app/api", prefix: "acme.azurecr.io/", refused: TOKEN_REFUSAL },
  { name: "GitLab (deploy token)", reg: R.gitlab, registry: "registry.gitlab.com", repo: "acme/project/app", prefix: "registry.gitlab.com/", refused: TOKEN_REFUSAL },
  { name: "Amazon ECR (instance role)", reg: R.ecr, registry: R.ecr.host, repo: "team/app", prefix: `${R.ecr.host}/`, type: "ecr", refused: /401 Unauthorized/ },
];

function spec(c: Case, id: string, image: string, username = c.reg.user) {
  const cred = c.type === "ecr" ? { id, type: "ecr", registry: c.registry } : { id, type: "token", registry: c.registry, username };
  return { bakeId: `bk_${uid()}`, orgId: "org_1", registryCredentials: [cred], services: [{ name: "svc", image, registryCredentialId: id }] };
}

async function bake(s: unknown) {
  const b = box();
  const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"]);
  return { b, r, out: parseJsonResult(r) };
}

beforeAll(async () => {
  await aws.start();
  aws.ecrPasswords.set(ECR_ACCOUNT, R.ecr.password!);
});
afterAll(async () => {
  for (const b of boxes) b.cleanup();
  await aws.stop();
});

describe.each(CASES)("$name", (c) => {
  let img: PushedImage;
  let id: string;
  beforeAll(async () => {
    img = await pushRandomImage(c.reg.push, `${c.repo}-${uid()}`, "1");
    id = `rc_${uid()}`;
    if (c.type !== "ecr") aws.putParameter(`${PREFIX}${id}`, c.reg.password!);
  });
  const ref = () => `${c.prefix}${img.repository}:1`;

  it("bakes with its credential: image present, digest in the manifest, no secret anywhere", async () => {
    const { b, r, out } = await bake(spec(c, id, ref()));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(out.services[0]).toMatchObject({ status: "pulled", digest: img.digest, imageId: img.imageId });
    expect((await docker.getImage(`${c.reg.host === "registry-1.docker.io" ? "docker.io" : c.reg.host}/${img.repository}:1`).inspect()).Id).toBe(img.imageId);
    const manifest = JSON.parse(readFileSync(path.join(b.stateDir, "manifest.json"), "utf8"));
    expect(manifest.services[0]).toMatchObject({ digest: img.digest, registryCredentialId: id });
    expect(secretLeaks(c.reg.password!, b, r)).toEqual([]);
  });

  it("fails a wrong or revoked secret with registry_auth_failed and the registry's own words", async () => {
    const bad = `${id}_revoked`;
    if (c.type === "ecr") aws.ecrPasswords.set(ECR_ACCOUNT, "expired-" + uid());
    else aws.putParameter(`${PREFIX}${bad}`, "revoked-" + uid());
    try {
      const { r, out } = await bake(spec(c, c.type === "ecr" ? id : bad, ref()));
      expect(r.code).toBe(1);
      expect(out.services[0]!.error).toMatchObject({ code: "registry_auth_failed", retryable: false });
      expect(out.services[0]!.error!.message).toMatch(c.refused);
    } finally {
      aws.ecrPasswords.set(ECR_ACCOUNT, R.ecr.password!);
    }
  });

  it("reports a private image pulled without a credential as image_not_found with the hint", async () => {
    const { r, out } = await bake({ bakeId: `bk_${uid()}`, orgId: "o", services: [{ name: "svc", image: ref() }] });
    expect(r.code).toBe(1);
    expect(out.services[0]!.error).toMatchObject({ code: "image_not_found" });
    expect(out.services[0]!.error!.hint).toMatch(/private/);
  });
});

describe("Docker Hub's names", () => {
  it("pulls a catalog image with no registry part anonymously from Docker Hub (library/)", async () => {
    const tag = `7-${uid()}`;
    const img = await pushRandomImage(R.dockerhub.push, "library/redis", tag);
    const { r, out } = await bake({ bakeId: `bk_${uid()}`, orgId: "o", services: [{ name: "cache", image: `redis:${tag}`, catalog: true }] });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(out.services[0]).toMatchObject({ status: "pulled", digest: img.digest });
    expect((await docker.getImage(`docker.io/library/redis:${tag}`).inspect()).Id).toBe(img.imageId);
  });

  it("serves an image written registry-1.docker.io/… with a credential for docker.io", async () => {
    const img = await pushRandomImage(R.dockerhub.push, `acme/api-${uid()}`, "1");
    const id = `rc_hub_${uid()}`;
    aws.putParameter(`${PREFIX}${id}`, R.dockerhub.password!);
    const c = CASES[0]!;
    const { r, out } = await bake(spec(c, id, `registry-1.docker.io/${img.repository}:1`));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(out.services[0]).toMatchObject({ status: "pulled", digest: img.digest });
  });
});

describe("secrets of any content", () => {
  it("passes an 8 KB secret intact", async () => {
    const img = await pushRandomImage(R.gitlab.push, `acme/big-${uid()}`, "1");
    const id = `rc_big_${uid()}`;
    aws.putParameter(`${PREFIX}${id}`, stack.bigSecret.password);
    const c = CASES.find((x) => x.reg === R.gitlab)!;
    const { b, r, out } = await bake(spec(c, id, `registry.gitlab.com/${img.repository}:1`, stack.bigSecret.user));
    expect(stack.bigSecret.password.length).toBeGreaterThanOrEqual(8192);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(out.services[0]).toMatchObject({ status: "pulled", digest: img.digest });
    expect(secretLeaks(stack.bigSecret.password, b, r)).toEqual([]);
  });

  it("logs in with a GCR JSON key holding quotes, backslashes, newlines and tabs (check-credential)", async () => {
    for (const awkward of ['"', "\\\\", "\n", "\\n", "\\t"]) expect(stack.gcpKey.json).toContain(awkward);
    const id = `rc_gcr_${uid()}`;
    aws.putParameter(`${PREFIX}${id}`, stack.gcpKey.json);
    const b = box();
    const f = b.write("spec.json", spec(CASES[2]!, id, "gcr.io/acme-project/anything:1", "_json_key"));
    const r = await b.run(["check-credential", "--spec", f, "--id", id]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/login:\s+succeeded \(gcr\.io\)/);
    expect(secretLeaks(stack.gcpKey.json, b, r)).toEqual([]);
  });

  it("scrubs a DigitalOcean token that is also the username from every output", async () => {
    const id = `rc_do_${uid()}`;
    aws.putParameter(`${PREFIX}${id}`, R.digitalocean.password!);
    const b = box();
    const f = b.write("spec.json", spec(CASES[5]!, id, "registry.digitalocean.com/acme/x:1"));
    const r = await b.run(["check-credential", "--spec", f, "--id", id]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("[REDACTED]");
    expect(secretLeaks(R.digitalocean.password!, b, r)).toEqual([]);
  });
});
