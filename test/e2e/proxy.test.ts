// Behind a proxy (SPEC §4): the agent's own requests — SSM, the ECR API, the
// control plane's events — go through HTTPS_PROXY to a real forward proxy
// (Debian's tinyproxy, Basic auth), the only way to reach them: their names
// (under .test) resolve for the proxy alone, and the agent's own lookups are
// from /etc/hosts only, so nothing asks a resolver outside. The AWS stand-in and
// the control plane answer over HTTPS with a certificate of the test's own CA,
// given the standard way (NODE_EXTRA_CA_CERTS): requests go through CONNECT as
// they do to AWS. NO_PROXY's curl rules (a domain and the names under it, a CIDR
// range) send requests straight past the proxy; the instance metadata service is
// never proxied, though every proxy variable says otherwise (NODE_USE_ENV_PROXY
// included); the proxy's password appears nowhere.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { makeCerts } from "../stack/certs.ts";
import { ControlPlane } from "../stack/control-plane.ts";
import { startForwardProxy, type ForwardProxy } from "../stack/forward-proxy.ts";
import { pushRandomImage } from "../stack/images.ts";
import { ECR_ACCOUNT } from "../stack/stack.ts";
import { startDaemon, until, type Daemon } from "./daemon-harness.ts";
import { newBox, parseJsonResult, PREFIX, secretLeaks, uid, type Box, type RunOptions } from "./harness.ts";

const stack = inject("stack");
const aws = new AwsStandIn();
const { ghcr, ecr } = stack.registries;
const boxes: Box[] = [];
const daemons: Daemon[] = [];
const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-proxy-test-"));
let proxy: ForwardProxy;
let cp: ControlPlane;
let caFile: string;
let awsTls: number;
let cpPort: number;
/** The agent's own /etc/hosts where NO_PROXY sends a name straight to its target. */
let directHosts: string;

/** A box whose control plane is at `cpUrl`: through the proxy by name, or straight to it by address. */
const box = (cpUrl: string) => {
  const b = newBox(stack, aws, { controlPlane: cp, config: { controlPlaneUrl: cpUrl } });
  boxes.push(b);
  return b;
};
const creds = [
  { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" },
  { id: "rc_ecr", type: "ecr", registry: ecr.host },
];
/** A bake of two images pushed for it alone: an image Docker already has is not pulled, and its credential not asked for. */
const spec = async () => {
  const n = uid();
  const [api, worker] = await Promise.all([pushRandomImage(ghcr.push, `acme/proxied-${n}`, "1"), pushRandomImage(ecr.push, `proxied-${n}`, "1")]);
  return {
    bakeId: `bk_${n}`,
    orgId: "o",
    registryCredentials: creds,
    services: [
      { name: "api", image: api.reference, registryCredentialId: "rc_gh" },
      { name: "worker", image: `${ecr.host}/${worker.repository}@${worker.digest}`, registryCredentialId: "rc_ecr" },
    ],
  };
};

/** What every case's agent has: the proxy for both schemes, the test CA, and Node's own proxy switch on (which must change nothing). */
const proxied = (more: Record<string, string> = {}): RunOptions => ({
  env: {
    HTTPS_PROXY: proxy.url,
    http_proxy: proxy.url,
    NODE_USE_ENV_PROXY: "1",
    NODE_EXTRA_CA_CERTS: caFile,
    AWS_ENDPOINT_URL_SSM: `https://aws.proxy.test:${awsTls}`,
    AWS_ENDPOINT_URL_ECR: `https://aws.proxy.test:${awsTls}`,
    ...more,
  },
  hostsFileOnly: true,
});

beforeAll(async () => {
  const certs = makeCerts(dir, ["aws.proxy.test", "cp.proxy.test", "ssm.direct.test", "127.0.0.1"]);
  caFile = path.join(dir, "ca.pem");
  const pem = { cert: readFileSync(certs.tlsCertFile, "utf8"), key: readFileSync(certs.tlsKeyFile, "utf8") };
  await aws.start();
  awsTls = await aws.startTls(pem);
  cp = await new ControlPlane("cp-" + uid(), "127.0.0.1", pem).start();
  cpPort = Number(new URL(cp.url).port);
  proxy = await startForwardProxy({ hosts: { "aws.proxy.test": "127.0.0.1", "cp.proxy.test": "127.0.0.1" }, user: "sbx-proxy-user", password: `pw-${randomBytes(12).toString("hex")}` });
  directHosts = path.join(dir, "agent-hosts");
  writeFileSync(directHosts, "127.0.0.1 localhost\n127.0.0.1 ssm.direct.test\n");
  aws.putParameter(`${PREFIX}rc_gh`, ghcr.password!);
  aws.ecrPasswords.set(ECR_ACCOUNT, ecr.password!);
}, 120_000);
afterAll(async () => {
  for (const d of daemons.splice(0)) await d.stop("SIGKILL");
  for (const b of boxes) b.cleanup();
  await proxy?.stop();
  await cp?.stop();
  await aws.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The requests the proxy was asked during `run`. */
async function asked<T>(run: () => Promise<T>): Promise<{ result: T; requests: string[] }> {
  const before = proxy.requests().length;
  const result = await run();
  return { result, requests: proxy.requests().slice(before) };
}

// One at a time: each case reads the proxy's log for the requests it made.
describe("behind a forward proxy", () => {
  it("a bake's SSM and ECR calls and its events go through the proxy with its credentials; the metadata service never does; the password appears nowhere", async () => {
    const b = box(`https://cp.proxy.test:${cpPort}`);
    const s = await spec();
    const callsBefore = aws.calls.length;
    const { result: r, requests } = await asked(() => b.run(["bake", "--spec", b.write("spec.json", s), "--json"], proxied()));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(parseJsonResult(r).services.map((x) => x.status)).toEqual(["pulled", "pulled"]);
    // Only through the proxy's CONNECT could the agent reach these names.
    expect(requests).toContain(`CONNECT aws.proxy.test:${awsTls} HTTP/1.1`);
    expect(requests).toContain(`CONNECT cp.proxy.test:${cpPort} HTTP/1.1`);
    const calls = aws.calls.slice(callsBefore);
    expect(calls.filter((c) => c.api !== "imds").map((c) => `${c.api} ${c.outcome}`).sort()).toEqual(["ecr:GetAuthorizationToken ok", "ssm:GetParameter ok"]);
    // The instance role's credentials came from the metadata service, straight: the proxy never heard of it.
    expect(calls.some((c) => c.api === "imds")).toBe(true);
    const imdsPort = new URL(aws.url).port;
    expect(requests.filter((q) => q.includes(`:${imdsPort}`) || q.includes("/latest/"))).toEqual([]);
    // Nothing else either: not the Docker socket's requests, not a registry's (dockerd's own).
    expect(new Set(requests)).toEqual(new Set([`CONNECT aws.proxy.test:${awsTls} HTTP/1.1`, `CONNECT cp.proxy.test:${cpPort} HTTP/1.1`]));
    const events = cp.deliveries.filter((d) => d.bakeId === s.bakeId);
    expect(events.map((d) => d.body["type"])).toEqual(["bake.started", "service.pulled", "service.pulled", "bake.succeeded"]);
    for (const secret of [proxy.password, ghcr.password!, ecr.password!, cp.token]) expect(secretLeaks(secret, b, r, events.map((e) => e.body))).toEqual([]);
  }, 150_000);

  it("NO_PROXY sends a name under a listed domain and an address inside a listed CIDR range straight to their targets", async () => {
    // The control plane by address (127.0.0.0/8), SSM by a name under direct.test that only the agent's own hosts file knows;
    // the ECR API still through the proxy.
    const b = box(`https://127.0.0.1:${cpPort}`);
    const s = await spec();
    const opts = proxied({ NO_PROXY: "direct.test,127.0.0.0/8", AWS_ENDPOINT_URL_SSM: `https://ssm.direct.test:${awsTls}` });
    const { result: r, requests } = await asked(() => b.run(["bake", "--spec", b.write("spec.json", s), "--json"], { ...opts, hostsFile: directHosts }));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(requests).toEqual([`CONNECT aws.proxy.test:${awsTls} HTTP/1.1`]);
    expect(cp.deliveries.filter((d) => d.bakeId === s.bakeId).map((d) => d.body["type"])).toEqual(["bake.started", "service.pulled", "service.pulled", "bake.succeeded"]);
    expect(secretLeaks(proxy.password, b, r)).toEqual([]);
  }, 150_000);

  it("check-credential says which proxy it asks the AWS endpoint through, or which NO_PROXY entry sends it straight, and that registry traffic is dockerd's", async () => {
    const b = box(`https://cp.proxy.test:${cpPort}`);
    const f = b.write("spec.json", await spec());
    const through = await b.run(["check-credential", "--spec", f, "--id", "rc_ecr"], proxied());
    expect(through.code, through.stdout + through.stderr).toBe(0);
    expect(through.stdout).toContain(`credential rc_ecr: https://aws.proxy.test:${awsTls} is asked through the proxy ${proxy.address} (HTTPS_PROXY); the instance metadata service never through a proxy`);
    expect(through.stdout).toContain("credential rc_ecr: the registry login and pulls are dockerd's: they follow dockerd's own proxy settings, not the agent's");
    expect(through.stdout).toContain("credential rc_ecr is good");
    const direct = await b.run(["check-credential", "--spec", f, "--id", "rc_gh"], { ...proxied({ no_proxy: "direct.test", AWS_ENDPOINT_URL_SSM: `https://ssm.direct.test:${awsTls}` }), hostsFile: directHosts });
    expect(direct.code, direct.stdout + direct.stderr).toBe(0);
    expect(direct.stdout).toContain(`credential rc_gh: https://ssm.direct.test:${awsTls} is asked directly: no_proxy entry direct.test matches`);
    expect(secretLeaks(proxy.password, b, [through, direct])).toEqual([]);
  }, 150_000);

  it("the daemon behind the proxy: /readyz reaches SSM through it, and a bake posted to the daemon goes through it too", async () => {
    const b = box(`https://cp.proxy.test:${cpPort}`);
    const { result: d, requests: atStart } = await asked(async () => {
      const daemon = await startDaemon(b, proxied());
      daemons.push(daemon);
      return daemon;
    });
    const ready = await d.api("GET", "/readyz", undefined, null);
    expect(ready.status, ready.text).toBe(200);
    expect(ready.json["checks"]).toMatchObject({ aws: { ok: true }, docker: { ok: true } });
    const s = await spec();
    const { requests } = await asked(async () => {
      expect((await d.api("POST", "/v1/bakes", s)).status).toBe(202);
      const done = await until(async () => {
        const r = await d.api("GET", `/v1/bakes/${s.bakeId}`);
        return r.json["status"] !== "running" ? r.json : undefined;
      }, 90_000, `bake ${s.bakeId} to end`);
      expect(done["status"], JSON.stringify(done)).toBe("succeeded");
      await until(async () => (cp.deliveries.filter((x) => x.bakeId === s.bakeId).length >= 4 ? true : undefined), 60_000, "the bake's events");
    });
    expect(requests).toContain(`CONNECT aws.proxy.test:${awsTls} HTTP/1.1`);
    expect(requests).toContain(`CONNECT cp.proxy.test:${cpPort} HTTP/1.1`);
    expect([...atStart, ...requests].filter((q) => q.includes(`:${new URL(aws.url).port}`) || q.includes("/latest/"))).toEqual([]);
    expect(secretLeaks(proxy.password, b, [], [], [d.output()])).toEqual([]);
  }, 150_000);
});

// Each of these waits out the minute the agent gives an unreachable endpoint: side by side. Each reads only its own names in the proxy's log.
describe.concurrent("where the box cannot get through", () => {
  it("without the proxy the same names do not resolve on the box: a local lookup failure, not a request that went elsewhere", async () => {
    const b = box(`https://cp.proxy.test:${cpPort}`);
    const opts = proxied();
    const env = { ...opts.env };
    delete env["HTTPS_PROXY"];
    delete env["http_proxy"];
    const f = b.write("spec.json", await spec());
    const { result: r, requests } = await asked(() => b.run(["bake", "--spec", f, "--json"], { ...opts, env }));
    expect(r.code).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e.code).toBe("aws_unreachable");
    expect(e.message).toMatch(/getaddrinfo ENOTFOUND aws\.proxy\.test/);
    expect(requests.filter((q) => q.includes("aws.proxy.test"))).toEqual([]);
  }, 150_000);

  it("a proxy that refuses the credentials: aws_unreachable in the proxy's words, and the password it was given appears nowhere", async () => {
    const b = box(`https://cp.proxy.test:${cpPort}`);
    const wrong = `wrong-${randomBytes(12).toString("hex")}`;
    const badUrl = proxy.url.replace(encodeURIComponent(proxy.password), wrong);
    const f = b.write("spec.json", await spec());
    const r = await b.run(["bake", "--spec", f, "--json"], proxied({ HTTPS_PROXY: badUrl, http_proxy: badUrl, AWS_ENDPOINT_URL_SSM: `https://aws2.proxy.test:${awsTls}`, AWS_ENDPOINT_URL_ECR: `https://aws2.proxy.test:${awsTls}` }));
    expect(r.code).toBe(1);
    const e = parseJsonResult(r).services[0]!.error!;
    expect(e.code).toBe("aws_unreachable");
    expect(e.message).toMatch(new RegExp(`Failed to establish tunnel to aws2\\.proxy\\.test:${awsTls} via ${proxy.address.replace(/\./g, "\\.")}/: HTTP/1\\.[01] 40[17]`));
    expect(secretLeaks(wrong, b, r)).toEqual([]);
    expect(secretLeaks(proxy.password, b, r)).toEqual([]);
  }, 150_000);
});
