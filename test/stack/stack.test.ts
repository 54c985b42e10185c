// Smoke tests that prove the stack is made of real, faithful parts.
import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { fromNodeProviderChain } from "@aws-sdk/credential-providers";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "./aws/stand-in.ts";
import { ControlPlane } from "./control-plane.ts";
import { engineFromEnv } from "./dockerd.ts";
import { pushRandomImage } from "./images.ts";
import { startRegistryFront } from "./registry-front.ts";
import { revokeAfterLogin } from "./token-server.ts";

const stack = inject("stack");
const docker = new Docker({ socketPath: stack.socketPath });
const aws = new AwsStandIn();

function authHeader(auth: Record<string, string>): string {
  return Buffer.from(JSON.stringify(auth)).toString("base64url");
}

/** Runs a pull and resolves with the last JSON line, or rejects with the HTTP error. */
async function pull(ref: string, auth?: Record<string, string>, maxMs = 60_000): Promise<Record<string, unknown>[]> {
  const stream = (await docker.pull(ref, auth ? { authconfig: auth } : {})) as NodeJS.ReadableStream;
  return await new Promise((resolve, reject) => {
    const lines: Record<string, unknown>[] = [];
    const timer = setTimeout(() => {
      (stream as unknown as { destroy(): void }).destroy();
      reject(new Error("pull timed out"));
    }, maxMs);
    docker.modem.followProgress(
      stream,
      (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(lines);
      },
      (e: Record<string, unknown>) => lines.push(e),
    );
  });
}

beforeAll(async () => {
  await aws.start();
  for (const [k, v] of Object.entries(aws.env())) process.env[k] = v;
  delete process.env["AWS_ACCESS_KEY_ID"];
  delete process.env["AWS_SECRET_ACCESS_KEY"];
  delete process.env["AWS_PROFILE"];
  process.env["AWS_REGION"] = "us-east-1";
});
afterAll(() => aws.stop());

describe("the AWS stand-in", () => {
  it("serves a SecureString to the real SDK through IMDSv2 role credentials", async () => {
    aws.putParameter("/slothbox/registry-credentials/rc_smoke", "the-secret-value");
    const ssm = new SSMClient({ credentials: fromNodeProviderChain() });
    const out = await ssm.send(new GetParameterCommand({ Name: "/slothbox/registry-credentials/rc_smoke", WithDecryption: true }));
    expect(out.Parameter?.Value).toBe("the-secret-value");
    expect(out.Parameter?.Type).toBe("SecureString");
    expect(aws.callsTo("imds").map((c) => c.target)).toContain("/latest/api/token");
    expect(aws.callsTo("ssm:GetParameter").at(-1)).toMatchObject({ outcome: "ok", withDecryption: true, region: "us-east-1" });
  });

  it("refuses a request signed with credentials it did not issue", async () => {
    const ssm = new SSMClient({ credentials: { accessKeyId: "ASIAFAKEFAKEFAKE", secretAccessKey: "nope", sessionToken: "nope" } });
    await expect(ssm.send(new GetParameterCommand({ Name: "/x", WithDecryption: true }))).rejects.toMatchObject({
      name: "UnrecognizedClientException",
    });
  });

  it("refuses a request whose signature was made with the wrong secret", async () => {
    const real = await fromNodeProviderChain()();
    const ssm = new SSMClient({ credentials: { ...real, secretAccessKey: real.secretAccessKey + "x" } });
    await expect(ssm.send(new GetParameterCommand({ Name: "/x", WithDecryption: true }))).rejects.toMatchObject({
      name: "InvalidSignatureException",
    });
  });

  it("refuses IMDSv1 reads", async () => {
    const res = await fetch(`${aws.url}/latest/meta-data/iam/security-credentials/`);
    expect(res.status).toBe(401);
  });

  it("answers ECR tokens for the registry id, and denies when told to with AWS's text", async () => {
    aws.ecrPasswords.set("123456789012", stack.registries.ecr.password!);
    const ecr = new ECRClient({ region: "us-east-1", credentials: fromNodeProviderChain() });
    const out = await ecr.send(new GetAuthorizationTokenCommand({ registryIds: ["123456789012"] }));
    const data = out.authorizationData?.[0];
    expect(Buffer.from(data?.authorizationToken ?? "", "base64").toString()).toBe(`AWS:${stack.registries.ecr.password}`);
    expect(data?.proxyEndpoint).toBe("https://123456789012.dkr.ecr.us-east-1.amazonaws.com");
    expect(data?.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 11 * 3600_000);
    aws.fault({ api: "ecr:GetAuthorizationToken", kind: "deny", times: 1 });
    await expect(ecr.send(new GetAuthorizationTokenCommand({ registryIds: ["123456789012"] }))).rejects.toMatchObject({
      name: "AccessDeniedException",
      message: expect.stringContaining("is not authorized to perform: ecr:GetAuthorizationToken"),
    });
  });
});

describe("the registries and dockerd", () => {
  it("runs the engine and image store it was asked for (SLOTHBOX_TEST_ENGINE)", async () => {
    const asked = engineFromEnv();
    expect(stack.engine).toMatchObject(asked);
    const version = await docker.version();
    expect(version.Version.startsWith(`${asked.version}.`)).toBe(true);
    expect(version.ApiVersion).toBe(stack.engine.apiVersion);
    // `docker info` names the snapshotter as the driver when the containerd store is on.
    const info = (await docker.info()) as { Driver: string };
    expect(info.Driver).toBe(asked.store === "containerd" ? "overlayfs" : "vfs");
  });

  it("logs in with POST /auth and pulls from the ECR-named host with X-Registry-Auth", async () => {
    const ecr = stack.registries.ecr;
    const img = await pushRandomImage(ecr.push, "smoke/app", "1");
    const auth = { username: "AWS", password: ecr.password!, serveraddress: ecr.host };
    const login = await docker.checkAuth(auth);
    expect(login).toMatchObject({ Status: "Login Succeeded" });
    // dockerode encodes authconfig itself; prove the raw header path too with a padded base64url header.
    expect(authHeader(auth)).not.toContain("+");
    await pull(img.reference, auth);
    const inspected = await docker.getImage(img.reference).inspect();
    // The containerd store names an image by its manifest digest, the classic store by its config digest.
    expect(inspected.Id).toBe(stack.engine.store === "containerd" ? img.digest : img.imageId);
    expect(inspected.RepoDigests).toContain(`${ecr.host}/smoke/app@${img.digest}`);
  });

  it("answers a wrong password in each registry's own words (bearer-token auth, test/stack/refusals.ts)", async () => {
    const { ghcr } = stack.registries;
    await expect(docker.checkAuth({ username: "acme-bot", password: "wrong", serveraddress: ghcr.host })).rejects.toThrow(/denied: denied/);
    await expect(docker.checkAuth({ username: "acme", password: "wrong", serveraddress: "https://index.docker.io/v1/" })).rejects.toThrow(
      /unauthorized: incorrect username or password/,
    );
  });

  it("refuses a pull token as revoked after the login passed, in the service's words (POST /__token/revoke)", async () => {
    const { quay } = stack.registries;
    const img = await pushRandomImage(quay.push, `acmecorp/revoked-${Date.now()}`, "1");
    const auth = { username: quay.user!, password: quay.password!, serveraddress: quay.host };
    await revokeAfterLogin(stack.tokenServerUrl, quay.tokenService!, img.repository, 100);
    try {
      expect(await docker.checkAuth(auth)).toMatchObject({ Status: "Login Succeeded" });
      await expect(pull(img.reference, auth)).rejects.toThrow(/unauthorized: Could not find robot with username: acme\+deployer and supplied password\./);
    } finally {
      await revokeAfterLogin(stack.tokenServerUrl, quay.tokenService!, img.repository, 0);
    }
    expect(await pull(img.reference, auth)).not.toHaveLength(0);
  });

  it("answers a wrong password on a basic-auth registry with its 401 text", async () => {
    const ecr = stack.registries.ecr;
    await expect(docker.checkAuth({ username: "AWS", password: "wrong", serveraddress: ecr.host })).rejects.toThrow(/401 Unauthorized/);
  });

  it("refuses an anonymous pull of a private image", async () => {
    const ghcr = stack.registries.ghcr;
    const img = await pushRandomImage(ghcr.push, "smoke/private", "1");
    await expect(pull(img.reference)).rejects.toThrow(/pull access denied for ghcr\.io\/smoke\/private, repository does not exist or may require 'docker login'/);
  });

  it("has a registry that serves the manifest and then stalls mid-blob", async () => {
    const quay = stack.registries.quay;
    await pushRandomImage(quay.push, "smoke/stall", "1", { layers: 1, bytes: 256 * 1024 });
    const started = Date.now();
    await expect(pull(`${stack.registries.stall.host}/smoke/stall:1`, undefined, 6000)).rejects.toThrow("pull timed out");
    expect(Date.now() - started).toBeGreaterThanOrEqual(5900);
    await expect(docker.getImage(`${stack.registries.stall.host}/smoke/stall:1`).inspect()).rejects.toThrow(/No such image/);
  });
});

describe("the registry fronts under a busy test", () => {
  it("take a push made right after the test's own work held its event loop longer than a front keeps an idle connection", async () => {
    const quay = stack.registries.quay;
    await pushRandomImage(quay.push, "smoke/after-busy", "1", { layers: 1 });
    // What generating a large image's layers does on a busy machine (randomBytes and gzipSync, for
    // seconds): nothing else runs meanwhile, so a pooled connection cannot see that its server closed
    // it when idle (a Node server's default: after 6 s), and the next request would go out on it.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 8000);
    const img = await pushRandomImage(quay.push, "smoke/after-busy", "2", { layers: 1 });
    await pull(img.reference);
    const inspected = await docker.getImage(img.reference).inspect();
    expect(inspected.RepoDigests).toContain(`${quay.host}/smoke/after-busy@${img.digest}`);
  });

  it("answer 502 in a load balancer's words when the registry behind is gone, not a hang-up", async () => {
    const address = `127.${stack.subnet}.2.1`;
    // Nothing listens there: the registry behind this front refuses every connection.
    const front = await startRegistryFront({ host: "gone.example.test", address, port: 80, backend: { address: `127.${stack.subnet}.2.2`, port: 5000 } });
    try {
      const res = await fetch(`${front.url}/v2/smoke/app/manifests/1`);
      expect(res.status).toBe(502);
      expect(await res.text()).toContain("502 Bad Gateway");
    } finally {
      await front.stop();
    }
  });
});

describe("the control-plane receiver", () => {
  it("checks the bearer token, records idempotency keys and fails when told", async () => {
    const cp = await new ControlPlane("cp-token").start();
    const post = (token: string, key: string) =>
      fetch(`${cp.url}/v1/boxes/box1/bakes/bk1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "idempotency-key": key, "content-type": "application/json" },
        body: JSON.stringify({ id: key, type: "bake.started" }),
      });
    expect((await post("wrong", "evt_1")).status).toBe(401);
    cp.failNext(1, 503);
    expect((await post("cp-token", "evt_1")).status).toBe(503);
    expect((await post("cp-token", "evt_1")).status).toBe(202);
    expect((await post("cp-token", "evt_1")).status).toBe(202);
    expect(cp.accepted()).toHaveLength(1);
    await cp.stop();
    await expect(post("cp-token", "evt_2")).rejects.toThrow();
    await cp.start();
    expect((await post("cp-token", "evt_2")).status).toBe(202);
    await cp.stop();
  });
});
