// A box that cannot reach AWS (docs/reference.md §5): an endpoint whose name does not
// resolve, one that refuses, one that never answers (a black hole: connections
// dropped, as a private subnet without a route drops them), the instance
// metadata service never answering, SSM answering 503 for ever. Each bake ends
// within the network budget (a minute, bounded here by the 90 s the harness
// gives a run) with the right code, the endpoint named, the network error in
// its words and `attempts`, on the CLI and in the daemon; /readyz names the
// endpoint that fails. A control plane that never answers costs a bake no more
// than its delivery budget. Names resolve from /etc/hosts only where a real AWS
// name must fail, so that no query leaves the machine.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { startBlackHole, type BlackHole } from "../stack/black-hole.ts";
import { ControlPlane } from "../stack/control-plane.ts";
import { pushRandomImage } from "../stack/images.ts";
import { ECR_ACCOUNT } from "../stack/stack.ts";
import { freePort, startDaemon, until, type Daemon } from "./daemon-harness.ts";
import { newBox, parseJsonResult, PREFIX, secretLeaks, uid, type Box, type RunOptions } from "./harness.ts";

const stack = inject("stack");
const aws = new AwsStandIn();
const { ghcr, ecr, quay } = stack.registries;
const boxes: Box[] = [];
const daemons: Daemon[] = [];
let hole: BlackHole;
let refusing: string;

const box = (opts: Parameters<typeof newBox>[2] = {}) => {
  const b = newBox(stack, aws, opts);
  boxes.push(b);
  return b;
};
const spec = (cred: Record<string, unknown>, image: string) => ({
  bakeId: `bk_${uid()}`,
  orgId: "o",
  registryCredentials: [cred],
  services: [{ name: "svc", image, registryCredentialId: cred["id"] }],
});
const gh = (id = "rc_gh") => ({ id, type: "token", registry: "ghcr.io", username: "acme-bot" });
const ecrCred = (registry = ecr.host) => ({ id: "rc_ecr", type: "ecr", registry });

beforeAll(async () => {
  await aws.start();
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
  aws.putParameter(`${PREFIX}rc_503`, ghcr.password!);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
  hole = await startBlackHole();
  // A port nothing listens on: the kernel refuses at once.
  refusing = `http://127.0.0.1:${await freePort()}`;
});
afterAll(async () => {
  for (const d of daemons.splice(0)) await d.stop("SIGKILL");
  for (const b of boxes) b.cleanup();
  await hole?.stop();
  await aws.stop();
});

interface Case {
  what: string;
  code: "aws_unreachable" | "aws_credentials_unavailable";
  spec: () => ReturnType<typeof spec>;
  run: () => RunOptions;
  /** The endpoint the message must name. */
  endpoint: () => string;
  words: RegExp;
  /** /readyz checks the credentials and the SSM endpoint: what it must say, where the failing endpoint is one of those. */
  readyz?: boolean;
}

const CASES: Case[] = [
  {
    what: "an SSM endpoint whose name does not resolve",
    code: "aws_unreachable",
    spec: () => spec(gh(), "ghcr.io/acme/never:1"),
    run: () => ({ unset: ["AWS_ENDPOINT_URL_SSM"], hostsFileOnly: true }),
    endpoint: () => "https://ssm.us-east-1.amazonaws.com",
    words: /getaddrinfo ENOTFOUND ssm\.us-east-1\.amazonaws\.com/,
    readyz: true,
  },
  {
    what: "an SSM endpoint that refuses connections",
    code: "aws_unreachable",
    spec: () => spec(gh(), "ghcr.io/acme/never:1"),
    run: () => ({ env: { AWS_ENDPOINT_URL_SSM: refusing } }),
    endpoint: () => refusing,
    words: /connect ECONNREFUSED 127\.0\.0\.1:\d+/,
    readyz: true,
  },
  {
    what: "an SSM endpoint that never answers",
    code: "aws_unreachable",
    spec: () => spec(gh(), "ghcr.io/acme/never:1"),
    run: () => ({ env: { AWS_ENDPOINT_URL_SSM: hole.url } }),
    endpoint: () => hole.url,
    words: /connect timeout: no connection within \d+ s/,
    readyz: true,
  },
  {
    what: "an ECR API endpoint that never answers",
    code: "aws_unreachable",
    spec: () => spec(ecrCred(), `${ecr.host}/never:1`),
    run: () => ({ env: { AWS_ENDPOINT_URL_ECR: hole.url } }),
    endpoint: () => hole.url,
    words: /connect timeout: no connection within \d+ s/,
  },
  {
    what: "an instance metadata service that never answers",
    code: "aws_credentials_unavailable",
    spec: () => spec(gh(), "ghcr.io/acme/never:1"),
    run: () => ({ env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: hole.url } }),
    endpoint: () => hole.url,
    words: /instance metadata service/,
    readyz: true,
  },
  {
    what: "SSM answering 503 for ever",
    code: "aws_unreachable",
    spec: () => {
      aws.fault({ api: "ssm:GetParameter", kind: "fail", status: 503, target: `${PREFIX}rc_503` });
      return spec(gh("rc_503"), "ghcr.io/acme/never:1");
    },
    run: () => ({}),
    endpoint: () => aws.url,
    words: /answered: HTTP 503 ServiceUnavailable: The request has failed due to a temporary failure of the server\./,
  },
];

function expectFailure(c: Case, e: { code: string; message: string; retryable: boolean; attempts?: number; hint: string } | undefined) {
  expect(e, "an error").toBeDefined();
  expect(e!.code).toBe(c.code);
  expect(e!.retryable).toBe(true);
  expect(e!.message).toContain(`${c.endpoint()}`);
  expect(e!.message).toMatch(c.words);
  expect(e!.attempts).toBeGreaterThanOrEqual(2);
  expect(e!.message).not.toMatch(/awsMaxWaitSeconds|aws_throttled/);
  if (c.code === "aws_unreachable") expect(e!.hint).toMatch(/NAT gateway or VPC endpoints .*com\.amazonaws\.<region>\.ssm.*ecr\.api/);
  else expect(e!.hint).toMatch(/instance profile.*hop limit/);
}

describe.concurrent("an AWS endpoint the agent cannot reach", () => {
  for (const c of CASES) {
    it(`${c.what}: the CLI's bake and the daemon's end within the minute with ${c.code}, naming the endpoint, with attempts`, async () => {
      const opts = c.run();
      const cli = (async () => {
        const b = box();
        const s = c.spec();
        const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"], opts);
        expect(r.code, r.stderr).toBe(1);
        expectFailure(c, parseJsonResult(r).services[0]!.error);
        // The minute is not silent: each retry says what failed and how long the agent keeps trying.
        expect(r.stderr).toMatch(new RegExp(`credential rc_\\w+: ${c.code} \\(.*\\); \\d+ attempts? so far, retrying for up to \\d+ s more`));
        expect(secretLeaks(ghcr.password!, b, r)).toEqual([]);
      })();
      const daemon = (async () => {
        const b = box();
        const d = await startDaemon(b, opts);
        daemons.push(d);
        if (c.readyz) {
          const ready = await d.api("GET", "/readyz", undefined, null);
          expect(ready.status).toBe(503);
          expect(ready.json["checks"]).toMatchObject({ aws: { ok: false, reason: expect.stringContaining(c.endpoint()) }, docker: { ok: true } });
        }
        const s = c.spec();
        expect((await d.api("POST", "/v1/bakes", s)).status).toBe(202);
        const done = await until(async () => {
          const r = await d.api("GET", `/v1/bakes/${s.bakeId}`);
          return r.json["status"] !== "running" ? r.json : undefined;
        }, 90_000, `bake ${s.bakeId} to end`);
        expect(done["status"]).toBe("failed");
        const services = done["services"] as { error?: Parameters<typeof expectFailure>[1] }[];
        expectFailure(c, services[0]!.error);
        expect(secretLeaks(ghcr.password!, b, [], [], [d.output()])).toEqual([]);
      })();
      await Promise.all([cli, daemon]);
    }, 150_000);
  }

  it("check-credential says first which endpoint it asks, then that it did not answer", async () => {
    const b = box();
    const f = b.write("spec.json", spec(gh(), "ghcr.io/acme/never:1"));
    const r = await b.run(["check-credential", "--spec", f, "--id", "rc_gh"], { unset: ["AWS_ENDPOINT_URL_SSM"], hostsFileOnly: true });
    expect(r.code).toBe(1);
    expect(r.stdout.split("\n")[0]).toMatch(/^credential rc_gh: asking ssm:GetParameter at https:\/\/ssm\.us-east-1\.amazonaws\.com, with the instance role's credentials from http:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout).toMatch(/result: +FAILED aws_unreachable \(retryable; \d+ attempts failed\)/);
    expect(r.stdout).toMatch(/reported: +ssm:GetParameter .*https:\/\/ssm\.us-east-1\.amazonaws\.com did not answer: getaddrinfo ENOTFOUND ssm\.us-east-1\.amazonaws\.com/);
  }, 150_000);

  it("a box whose last bake took its images from ECR alone is ready though SSM never answers (a subnet with VPC endpoints for ECR only)", async () => {
    const img = await pushRandomImage(ecr.push, `ready-${uid()}`, "1");
    const b = box();
    const baked = await b.run(["bake", "--spec", b.write("spec.json", spec(ecrCred(), img.reference))]);
    expect(baked.code, baked.stdout + baked.stderr).toBe(0);
    const d = await startDaemon(b, { env: { AWS_ENDPOINT_URL_SSM: hole.url } });
    daemons.push(d);
    const ready = await d.api("GET", "/readyz", undefined, null);
    expect(ready.status, ready.text).toBe(200);
    expect(ready.json["checks"]).toMatchObject({ aws: { ok: true } });
  }, 150_000);

  it("FIPS and dual-stack ECR registries get their token from the FIPS and dual-stack ECR API endpoints", async () => {
    const b = box();
    const fips = `${ECR_ACCOUNT}.dkr.ecr-fips.us-east-1.amazonaws.com`;
    const dual = `${ECR_ACCOUNT}.dkr-ecr.us-east-1.on.aws`;
    const s = {
      bakeId: `bk_${uid()}`,
      orgId: "o",
      registryCredentials: [
        { id: "rc_fips", type: "ecr", registry: fips },
        { id: "rc_dual", type: "ecr", registry: dual },
      ],
      services: [
        { name: "fips", image: `${fips}/app:1`, registryCredentialId: "rc_fips" },
        { name: "dual", image: `${dual}/app:1`, registryCredentialId: "rc_dual" },
      ],
    };
    // No AWS_ENDPOINT_URL_ECR: the SDK picks the endpoint by its own rules, and the name it asks for is in getaddrinfo's words.
    const r = await b.run(["bake", "--spec", b.write("spec.json", s), "--json"], { unset: ["AWS_ENDPOINT_URL_ECR"], hostsFileOnly: true });
    const services = parseJsonResult(r).services;
    expect(services.find((x) => x.name === "fips")!.error!.message).toMatch(/getaddrinfo ENOTFOUND api\.ecr-fips\.us-east-1\.amazonaws\.com/);
    expect(services.find((x) => x.name === "dual")!.error!.message).toMatch(/getaddrinfo ENOTFOUND ecr\.us-east-1\.api\.aws/);
  }, 150_000);
});

describe.concurrent("a control plane that never answers", () => {
  it("costs the CLI's bake no more than its delivery budget; the bake keeps its own result and its events", async () => {
    const img = await pushRandomImage(quay.push, `acme/cphole-${uid()}`, "1");
    const cp = new ControlPlane("tok-" + uid());
    cp.url = hole.url;
    const b = box({ controlPlane: cp });
    const r = await b.run(["bake", "--spec", b.write("spec.json", { bakeId: `bk_${uid()}`, orgId: "o", registryCredentials: [], services: [{ name: "a", image: img.reference }] })]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`events: 0 delivered to ${hole.url}; 3 waiting in .*outbox for the daemon to deliver`));
    const bakeMs = Number(/succeeded in (\d+\.\d)s/.exec(r.stdout)?.[1]) * 1000;
    // Generous: the budget is 10 s, and a busy machine stretches everything.
    expect(r.ms - bakeMs).toBeLessThan(30_000);
    expect(secretLeaks(cp.token, b, r)).toEqual([]);
  }, 150_000);

  it("lets the daemon finish bakes, keep the events and stop in bounded time", async () => {
    const img = await pushRandomImage(quay.push, `acme/cphole-${uid()}`, "1");
    const cp = new ControlPlane("tok-" + uid());
    cp.url = hole.url;
    const b = box({ controlPlane: cp });
    const d = await startDaemon(b);
    daemons.push(d);
    const s = { bakeId: `bk_${uid()}`, orgId: "o", registryCredentials: [], services: [{ name: "a", image: img.reference }] };
    expect((await d.api("POST", "/v1/bakes", s)).status).toBe(202);
    const done = await until(async () => {
      const x = await d.api("GET", `/v1/bakes/${s.bakeId}`);
      return x.json["status"] !== "running" ? x.json : undefined;
    }, 90_000, "the bake");
    expect(done["status"]).toBe("succeeded");
    expect((await d.api("GET", "/v1/status")).json["outboxEvents"]).toBeGreaterThanOrEqual(3);
    const stopped = await d.stop("SIGTERM", 60_000);
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(40_000);
    expect(secretLeaks(cp.token, b, [], [], [d.output()])).toEqual([]);
  }, 150_000);
});
