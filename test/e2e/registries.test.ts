// Every registry the platform supports, under its real host name, with its real
// credential form and auth flow (bearer tokens from a token server; ECR's basic
// auth with an instance-role token; Docker Hub over verified TLS), answering as
// the real service does (test/stack/refusals.ts). For each: a bake with the
// credential succeeds; and each way the registry refuses — a wrong secret, a
// private image without a credential, an image the credential may not read, an
// unknown tag, a rate limit, a credential refused after its login passed — fails with its SPEC §5 code, its hint and the
// registry's own words, in --json and in the events alike, on whichever engine
// and image store the stack runs (SLOTHBOX_TEST_ENGINE). No secret leaks.
import Docker from "dockerode";
import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { pushRandomImage, type PushedImage } from "../stack/images.ts";
import { injectFault, requestCounts } from "../stack/registry-front.ts";
import { ECR_ACCOUNT, type RegistryInfo } from "../stack/stack.ts";
import { revokeAfterLogin } from "../stack/token-server.ts";
import { newBox, parseJsonResult, PREFIX, secretLeaks, uid } from "./harness.ts";
import { awsAndControlPlane } from "./lifecycle.ts";

const stack = inject("stack");
const docker = new Docker({ socketPath: stack.socketPath });
const { aws, cp, boxes } = awsAndControlPlane(() => aws.ecrPasswords.set(ECR_ACCOUNT, R.ecr.password!));
const R = stack.registries;
const box = (config: Record<string, unknown> = {}) => {
  const b = newBox(stack, aws, { controlPlane: cp, config: { pullRetries: 0, ...config } });
  boxes.push(b);
  return b;
};

interface Words {
  /** A wrong or revoked secret. */
  refused: RegExp;
  /** A private image pulled without a credential. */
  anonymous: RegExp;
  /** An image this credential may not read. */
  notAllowed: RegExp;
  /** The pull's 401 after the login passed (an expired or revoked credential); undefined: ECR, whose expired token is a 403 (below). */
  revoked?: RegExp;
  /** An unknown tag. */
  unknownTag: RegExp;
  rateLimited: RegExp;
}

interface Case {
  name: string;
  reg: RegistryInfo;
  /** The credential's `registry` as a user would enter it. */
  registry: string;
  /** Repository, in a namespace the credential may read. */
  repo: string;
  /** One the credential may not read. */
  otherRepo: string;
  /** How the spec writes the image's registry part ("" for none). */
  prefix: string;
  type?: "ecr";
  /** The code of an image this credential may not read, where the registry's words say the credential is bad (SPEC §5). */
  notAllowedCode?: "registry_auth_failed";
  /** The registry's own words (test/stack/refusals.ts), as the agent must report them on every engine. */
  words: Words;
}

const ANONYMOUS = /requested access to the resource is denied/;
const CASES: Case[] = [
  {
    name: "Docker Hub", reg: R.dockerhub, registry: "docker.io", repo: "acme/tool", otherRepo: "other/secret", prefix: "",
    words: { refused: /unauthorized: incorrect username or password/, anonymous: ANONYMOUS, notAllowed: ANONYMOUS, unknownTag: /manifest unknown/, rateLimited: /You have reached your unauthenticated pull rate limit/, revoked: /personal access token is expired/ },
  },
  {
    name: "GitHub (GHCR)", reg: R.ghcr, registry: "ghcr.io", repo: "acme/api", otherRepo: "other/secret", prefix: "ghcr.io/",
    words: { refused: /denied: denied/, anonymous: ANONYMOUS, notAllowed: /^denied$/, unknownTag: /manifest unknown/, rateLimited: /retry-after: 880\.092µs, allowed: 44000\/minute/, revoked: /unauthenticated: User cannot be authenticated with the token provided\./ },
  },
  {
    name: "Google GCR (_json_key)", reg: R.gcr, registry: "gcr.io", repo: "acme-project/app", otherRepo: "other-project/secret", prefix: "gcr.io/",
    // Google refuses a repository in words that also say "you may have invalid credentials".
    notAllowedCode: "registry_auth_failed",
    words: { refused: /You don't have the needed permissions/, anonymous: ANONYMOUS, notAllowed: /You don't have the needed permissions/, unknownTag: /Failed to fetch "nope" from request/, rateLimited: /Quota exceeded/, revoked: /you may have invalid credentials/ },
  },
  {
    name: "Artifact Registry (_json_key_base64)", reg: R.pkgdev, registry: "europe-west1-docker.pkg.dev", repo: "acme-project/containers/app", otherRepo: "other-project/repo/secret", prefix: "europe-west1-docker.pkg.dev/",
    words: { refused: /You don't have the needed permissions/, anonymous: ANONYMOUS, notAllowed: /Permission "artifactregistry\.repositories\.downloadArtifacts" denied on resource "projects\/other-project\//, unknownTag: /Failed to fetch "nope"/, rateLimited: /Quota exceeded/, revoked: /you may have invalid credentials/ },
  },
  {
    name: "Red Hat Quay (robot)", reg: R.quay, registry: "quay.io", repo: "acmecorp/app", otherRepo: "other/secret", prefix: "quay.io/",
    words: { refused: /Specified credentials are invalid/, anonymous: ANONYMOUS, notAllowed: ANONYMOUS, unknownTag: /manifest unknown/, rateLimited: /toomanyrequests/, revoked: /Could not find robot with username: acme\+deployer and supplied password\./ },
  },
  {
    name: "DigitalOcean (token as user and secret)", reg: R.digitalocean, registry: "registry.digitalocean.com", repo: "acme/app", otherRepo: "other/secret", prefix: "registry.digitalocean.com/",
    words: { refused: /unauthorized/, anonymous: ANONYMOUS, notAllowed: ANONYMOUS, unknownTag: /manifest unknown/, rateLimited: /toomanyrequests/, revoked: /^unauthorized$/ },
  },
  {
    name: "Azure ACR", reg: R.acr, registry: "acme.azurecr.io", repo: "app/api", otherRepo: "other/secret", prefix: "acme.azurecr.io/",
    words: { refused: /authentication required, visit https:\/\/aka\.ms\/acr\/authorization/, anonymous: ANONYMOUS, notAllowed: ANONYMOUS, unknownTag: /manifest tagged by "nope" is not found/, rateLimited: /toomanyrequests/, revoked: /authentication required, visit https:\/\/aka\.ms\/acr\/authorization/ },
  },
  {
    name: "GitLab (deploy token)", reg: R.gitlab, registry: "registry.gitlab.com", repo: "acme/project/app", otherRepo: "other/secret", prefix: "registry.gitlab.com/",
    words: { refused: /HTTP Basic: Access denied/, anonymous: ANONYMOUS, notAllowed: /denied: access forbidden/, unknownTag: /manifest unknown/, rateLimited: /toomanyrequests/, revoked: /HTTP Basic: Access denied/ },
  },
  {
    name: "Amazon ECR (instance role)", reg: R.ecr, registry: R.ecr.host, repo: "team/app", otherRepo: "denied/secret", prefix: `${R.ecr.host}/`, type: "ecr",
    words: {
      refused: /Not Authorized|unauthorized: authentication required/,
      anonymous: /no basic auth credentials/,
      notAllowed: /is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123456789012:repository\/denied\/secret-\w+ because no identity-based policy allows/,
      unknownTag: /Requested image not found/,
      rateLimited: /toomanyrequests: Rate exceeded/,
    },
  },
];

function spec(c: Case, id: string, image: string, username = c.reg.user) {
  const cred = c.type === "ecr" ? { id, type: "ecr", registry: c.registry } : { id, type: "token", registry: c.registry, username };
  return { bakeId: `bk_${uid()}`, orgId: "org_1", registryCredentials: [cred], services: [{ name: "svc", image, registryCredentialId: id }] };
}

async function bake(s: { bakeId: string } & Record<string, unknown>, config: Record<string, unknown> = {}) {
  const b = box(config);
  const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"]);
  const events = cp.accepted().filter((e) => e["bakeId"] === s.bakeId);
  return { b, r, out: parseJsonResult(r), events };
}

/** The failure as --json and the service.failed event say it: the same code, words and hint. */
function failure(res: Awaited<ReturnType<typeof bake>>) {
  expect(res.r.code, res.r.stdout + res.r.stderr).toBe(1);
  const e = res.out.services[0]!.error! as { code: string; message: string; hint: string; retryable: boolean; registryMessage?: string };
  const event = res.events.find((x) => x["type"] === "service.failed") as { error?: unknown } | undefined;
  expect(event?.error).toEqual(e);
  return e;
}

describe.each(CASES)("$name", (c) => {
  let img: PushedImage;
  let other: PushedImage;
  let id: string;
  beforeAll(async () => {
    [img, other] = await Promise.all([pushRandomImage(c.reg.push, `${c.repo}-${uid()}`, "1"), pushRandomImage(c.reg.push, `${c.otherRepo}-${uid()}`, "1")]);
    id = `rc_${uid()}`;
    if (c.type !== "ecr") aws.putParameter(`${PREFIX}${id}`, c.reg.password!);
  });
  const ref = (i: PushedImage, tag = "1") => `${c.prefix}${i.repository}:${tag}`;

  it("bakes with its credential: the image Docker has, its digest in the manifest, no secret anywhere", async () => {
    const res = await bake(spec(c, id, ref(img)));
    expect(res.r.code, res.r.stdout + res.r.stderr).toBe(0);
    const name = `${c.reg.host === "registry-1.docker.io" ? "docker.io" : c.reg.host}/${img.repository}:1`;
    const inspected = await docker.getImage(name).inspect();
    expect(res.out.services[0]).toMatchObject({ status: "pulled", digest: img.digest, imageId: inspected.Id });
    const manifest = JSON.parse(readFileSync(path.join(res.b.stateDir, "manifest.json"), "utf8"));
    expect(manifest.services[0]).toMatchObject({ digest: img.digest, imageId: inspected.Id, registryCredentialId: id });
    expect(secretLeaks(c.reg.password!, res.b, res.r, res.events)).toEqual([]);
  });

  it("fails a wrong or revoked secret with registry_auth_failed and the registry's own words", async () => {
    const bad = `${id}_revoked`;
    const revoked = (c.type === "ecr" ? "wrong-" : "revoked-") + uid();
    if (c.type === "ecr") aws.ecrPasswords.set(ECR_ACCOUNT, revoked);
    else aws.putParameter(`${PREFIX}${bad}`, revoked);
    try {
      const res = await bake(spec(c, c.type === "ecr" ? id : bad, ref(img)));
      const e = failure(res);
      expect(e).toMatchObject({ code: "registry_auth_failed", retryable: false, hint: expect.stringMatching(/expired or revoked token/) });
      expect(e.registryMessage).toMatch(c.words.refused);
      expect(secretLeaks(revoked, res.b, res.r, res.events)).toEqual([]);
    } finally {
      aws.ecrPasswords.set(ECR_ACCOUNT, R.ecr.password!);
    }
  });

  it("reports a private image pulled without a credential as image_not_found, with the private-image hint", async () => {
    const res = await bake({ bakeId: `bk_${uid()}`, orgId: "o", services: [{ name: "svc", image: ref(img) }] });
    const e = failure(res);
    expect(e).toMatchObject({ code: "image_not_found", hint: expect.stringMatching(/private/) });
    expect(e.registryMessage).toMatch(c.words.anonymous);
  });

  it("reports an image the credential may not read as image_access_denied, in the registry's words", async () => {
    const res = await bake(spec(c, id, ref(other)));
    const e = failure(res);
    if (c.notAllowedCode) expect(e).toMatchObject({ code: c.notAllowedCode, retryable: false, hint: expect.stringMatching(/expired or revoked token/) });
    else expect(e).toMatchObject({ code: "image_access_denied", retryable: false, hint: expect.stringMatching(/may not read the repository/) });
    expect(e.registryMessage).toMatch(c.words.notAllowed);
  });

  it.skipIf(!c.words.revoked)("reports a 401 to the pull after the login passed as registry_auth_failed, in the registry's words", async () => {
    // The token server refuses the pull's token for this repository as the service refuses a
    // credential it stopped accepting; the login, which asks for no repository, still passes.
    await revokeAfterLogin(stack.tokenServerUrl, c.reg.tokenService!, img.repository, 100);
    try {
      const res = await bake(spec(c, id, ref(img)));
      const e = failure(res);
      expect(e).toMatchObject({ code: "registry_auth_failed", retryable: false, hint: expect.stringMatching(/expired or revoked token/) });
      expect(e.registryMessage).toMatch(c.words.revoked!);
      expect(secretLeaks(c.reg.password!, res.b, res.r, res.events)).toEqual([]);
    } finally {
      await revokeAfterLogin(stack.tokenServerUrl, c.reg.tokenService!, img.repository, 0);
    }
  });

  it("reports an unknown tag as image_not_found, in the registry's words", async () => {
    const res = await bake(spec(c, id, ref(img, "nope")));
    const e = failure(res);
    expect(e).toMatchObject({ code: "image_not_found" });
    expect(e.registryMessage).toMatch(c.words.unknownTag);
  });

  it("retries a rate limit pullRetries times, counted at the registry, then reports registry_rate_limited", async () => {
    await injectFault(c.reg.control, img.repository, "ratelimit", 100);
    const before = await requestCounts(c.reg.control, img.repository);
    const res = await bake(spec(c, id, ref(img)), { pullRetries: 2 });
    const e = failure(res);
    expect(e).toMatchObject({ code: "registry_rate_limited", retryable: true });
    expect(e.registryMessage).toMatch(c.words.rateLimited);
    expect(res.r.stderr.match(/registry_rate_limited .*; retrying/g)).toHaveLength(2);
    const after = await requestCounts(c.reg.control, img.repository);
    expect(after.manifests - before.manifests).toBeGreaterThanOrEqual(3);
    await injectFault(c.reg.control, img.repository, "ratelimit", 0);
  });
});

describe("Amazon ECR's own refusals", () => {
  it("an expired token reads as registry_auth_failed with ECR's words, on every engine", async () => {
    const w = await pushRandomImage(R.ecr.push, `team/expired-${uid()}`, "1");
    aws.ecrPasswords.set(ECR_ACCOUNT, "expired-" + uid());
    try {
      const res = await bake(spec(CASES.at(-1)!, "rc_ecr", w.reference));
      const e = failure(res);
      expect(e).toMatchObject({ code: "registry_auth_failed", hint: expect.stringMatching(/expired or revoked token/) });
      expect(e.registryMessage).toMatch(/Your authorization token has expired\. Reauthenticate and try again\./);
    } finally {
      aws.ecrPasswords.set(ECR_ACCOUNT, R.ecr.password!);
    }
  });
});

describe("a registry's words are text, never terminal commands or forged lines", () => {
  it("strips escape sequences, control characters and bidi overrides, and joins lines, in the human output, --json and events", async () => {
    const c = CASES.find((x) => x.reg === R.ghcr)!;
    const img = await pushRandomImage(R.ghcr.push, `acme/forged-${uid()}`, "1");
    aws.putParameter(`${PREFIX}rc_forged`, R.ghcr.password!);
    // A hostile or broken registry: colours, a window-title OSC, a bidi override,
    // a bell, and line breaks that would print a fake success line beneath the real
    // one — as JSON escapes, which Docker decodes into the characters themselves.
    const message = String.raw`denied \u001b[31mRED\u001b[0m\u001b]0;owned\u0007 \u202eevil\u202c\r\n[  0.1s] pulled ghcr.io/acme/api:1 sha256:f00d in 0.1s\nbake bk_forged succeeded in 0.1s`;
    await injectFault(R.ghcr.control, img.repository, "words", 100, {
      status: 403,
      contentType: "application/json",
      body: `{"errors":[{"code":"DENIED","message":"${message}"}]}`,
    });
    try {
      const s = spec(c, "rc_forged", `ghcr.io/${img.repository}:1`);
      const res = await bake(s);
      const e = failure(res);
      expect(e.code).toBe("image_access_denied");
      const b = box();
      const human = await b.run(["bake", "--spec", b.write("spec.json", { ...s, bakeId: `bk_${uid()}` })]);
      expect(human.code).toBe(1);
      const strings = (v: unknown): string[] =>
        typeof v === "string" ? [v] : Array.isArray(v) ? v.flatMap(strings) : v && typeof v === "object" ? Object.values(v).flatMap(strings) : [];
      const everything = [res.r.stdout, res.r.stderr, human.stdout, human.stderr, ...strings(res.out), ...strings(res.events)].join("\n");
      // The words are there, as text.
      expect(`${e.message} ${e.registryMessage ?? ""}`).toMatch(/RED/);
      expect(human.stdout).toMatch(/RED/);
      // eslint-disable-next-line no-control-regex -- the characters that must not get through
      expect(everything).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      expect(everything).not.toMatch(/^\s*\[\s*0\.1s\] pulled ghcr\.io\/acme\/api:1/m);
      expect(everything).not.toMatch(/^\s*bake bk_forged succeeded/m);
      expect(secretLeaks(R.ghcr.password!, b, [human], [])).toEqual([]);
    } finally {
      await injectFault(R.ghcr.control, img.repository, "words", 0);
    }
  });
});

describe("Docker Hub's names", () => {
  it("pulls a catalog image with no registry part anonymously from Docker Hub (library/)", async () => {
    const tag = `7-${uid()}`;
    const img = await pushRandomImage(R.dockerhub.push, "library/redis", tag);
    const res = await bake({ bakeId: `bk_${uid()}`, orgId: "o", services: [{ name: "cache", image: `redis:${tag}`, catalog: true }] });
    expect(res.r.code, res.r.stdout + res.r.stderr).toBe(0);
    expect(res.out.services[0]).toMatchObject({ status: "pulled", digest: img.digest, imageId: (await docker.getImage(`docker.io/library/redis:${tag}`).inspect()).Id });
  });

  it("serves an image written registry-1.docker.io/… with a credential for docker.io", async () => {
    const img = await pushRandomImage(R.dockerhub.push, `acme/api-${uid()}`, "1");
    const id = `rc_hub_${uid()}`;
    aws.putParameter(`${PREFIX}${id}`, R.dockerhub.password!);
    const res = await bake(spec(CASES[0]!, id, `registry-1.docker.io/${img.repository}:1`));
    expect(res.r.code, res.r.stdout + res.r.stderr).toBe(0);
    expect(res.out.services[0]).toMatchObject({ status: "pulled", digest: img.digest });
    expect(secretLeaks(R.dockerhub.password!, res.b, res.r, res.events)).toEqual([]);
  });
});

describe("secrets of any content", () => {
  it("passes an 8 KB secret intact", async () => {
    const img = await pushRandomImage(R.gitlab.push, `acme/big-${uid()}`, "1");
    const id = `rc_big_${uid()}`;
    aws.putParameter(`${PREFIX}${id}`, stack.bigSecret.password);
    const c = CASES.find((x) => x.reg === R.gitlab)!;
    const res = await bake(spec(c, id, `registry.gitlab.com/${img.repository}:1`, stack.bigSecret.user));
    expect(stack.bigSecret.password.length).toBeGreaterThanOrEqual(8192);
    expect(res.r.code, res.r.stdout + res.r.stderr).toBe(0);
    expect(res.out.services[0]).toMatchObject({ status: "pulled", digest: img.digest });
    expect(secretLeaks(stack.bigSecret.password, res.b, res.r, res.events)).toEqual([]);
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
