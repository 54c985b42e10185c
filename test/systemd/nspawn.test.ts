// The packaged agent under a real systemd 252 (Debian 12, booted in
// systemd-nspawn): installed with install.sh as the Packer template does,
// started by its own unit against the stack's dockerd, a control plane and
// the AWS stand-in. Checks readiness (Type=notify), the unit's hardening as
// the running systemd rates it, and a bake over the API.
import { statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { ControlPlane } from "../stack/control-plane.ts";
import { pushRandomImage } from "../stack/images.ts";
import { freePort } from "../e2e/daemon-harness.ts";
import { uid } from "../e2e/harness.ts";
import { boot, ensureRootfs, packageAgent, skipReason, type AgentPackage, type Machine } from "./nspawn.ts";

const UNIT = "slothbox-agent.service";
/** A cold rootfs build (mmdebstrap, ~20 s here) plus packaging and boot, with room for a slow mirror. */
const SETUP_TIMEOUT_MS = 600_000;

const reason = skipReason();
if (reason) console.warn(`skipping the systemd-nspawn tests: ${reason}`);

describe.skipIf(reason !== undefined)(`the packaged agent under systemd 252 in systemd-nspawn${reason ? ` (skipped: ${reason})` : ""}`, () => {
  const stack = inject("stack");
  const aws = new AwsStandIn();
  const controlPlane = new ControlPlane(`cp-${uid()}`);
  const apiToken = `api-${uid()}${uid()}`;
  let pkg: AgentPackage | undefined;
  let m: Machine | undefined;
  let url = "";

  const api = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(url + p, {
      method,
      headers: { authorization: `Bearer ${apiToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const healthz = async () => {
    try {
      return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })).status === 200;
    } catch {
      return false;
    }
  };

  beforeAll(async () => {
    await aws.start();
    await controlPlane.start();
    // The docker group inside must carry the GID of the group that owns the stack's
    // socket (dockerd gives it its `docker` group), or the DynamicUser cannot use it.
    const rootfs = await ensureRootfs({ dockerGid: statSync(stack.socketPath).gid });
    pkg = await packageAgent();
    m = await boot({ rootfs, dockerSocket: stack.socketPath, agentPackage: pkg, log: (l) => console.log(l) });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // stateDir and dockerSocket stay at their defaults (/var/lib/slothbox, /var/run/docker.sock).
    const install = await m.installAgent({ boxId: `box-${m.name}`, controlPlaneUrl: controlPlane.url, listen: `127.0.0.1:${port}` });
    expect(install.code, install.stderr).toBe(0);
    await m.writeFile("/etc/slothbox/api-token", apiToken + "\n", 0o600);
    await m.writeFile("/etc/slothbox/control-plane-token", controlPlane.token + "\n", 0o600);
    // On a box the SDK finds IMDS at its fixed address; here the stand-in's, through a drop-in.
    const env = Object.entries(aws.env()).map(([k, v]) => `Environment=${k}=${v}`);
    await m.writeFile(`/etc/systemd/system/${UNIT}.d/aws-stand-in.conf`, ["[Service]", ...env, ""].join("\n"));
    expect((await m.systemctl(["daemon-reload"])).code).toBe(0);
    expect((await m.systemctl(["enable", UNIT])).code).toBe(0);
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await m?.cleanup();
    pkg?.cleanup();
    await controlPlane.stop();
    await aws.stop();
  }, 60_000);

  it("goes active only once /healthz answers (Type=notify, READY=1 after listening)", async () => {
    const machine = m!;
    expect((await machine.systemctl(["start", "--no-block", UNIT])).code).toBe(0);
    const active = await machine.waitFor(
      async () => {
        const s = await machine.unitState(UNIT);
        if (s.ActiveState === "failed") throw new Error(`unit failed:\n${(await machine.journal(UNIT)).join("\n")}`);
        // Read /healthz right after first seeing `active`: a READY=1 sent before listening fails here.
        return s.ActiveState === "active" ? { state: s, healthy: await healthz() } : undefined;
      },
      60_000,
      `${UNIT} to become active`,
    );
    expect(active.healthy).toBe(true);
    expect(active.state.StatusText).toMatch(/^serving on 127\.0\.0\.1:\d+$/);
    // And in the journal: the agent said it was serving before systemd said Started.
    const lines = await machine.journal(UNIT, { output: "cat" });
    const serving = lines.findIndex((l) => l.includes("slothbox-agent daemon serving"));
    const started = lines.findIndex((l) => l.startsWith("Started slothbox-agent.service"));
    expect(serving, lines.join("\n")).toBeGreaterThanOrEqual(0);
    expect(started).toBeGreaterThan(serving);
    // The dynamic user runs it, with the docker group among its groups.
    const ids = await machine.exec(["ps", "-o", "uid=,supgid=", "-p", String(active.state.MainPID)]);
    const [uidText, groups] = ids.stdout.trim().split(/\s+/);
    expect(Number(uidText)).toBeGreaterThanOrEqual(61184);
    expect(groups?.split(",")).toContain(String(statSync(stack.socketPath).gid));
  });

  it("rates an exposure of at most 2.0 in the running systemd's `systemd-analyze security`", async () => {
    const r = await m!.exec(["systemd-analyze", "security", "--no-pager", UNIT]);
    const score = Number(/Overall exposure level for slothbox-agent\.service: ([\d.]+)/.exec(r.stdout)?.[1]);
    expect(score, r.stdout + r.stderr).toBeGreaterThanOrEqual(0);
    expect(score).toBeLessThanOrEqual(2.0);
  });

  it("runs a bake posted to its API: an anonymous image pulled through the bound docker socket", async () => {
    const img = await pushRandomImage(stack.registries.quay.push, `smoke/nspawn-${uid()}`, "1");
    const bakeId = `bk_${uid()}`;
    const posted = await api("POST", "/v1/bakes", { bakeId, orgId: "org_1", registryCredentials: [], services: [{ name: "app", image: img.reference }] });
    expect(posted).toMatchObject({ status: 202, json: { bakeId } });
    const done = await m!.waitFor(
      async () => {
        const r = await api("GET", `/v1/bakes/${bakeId}`);
        return r.json["status"] !== "running" ? r.json : undefined;
      },
      60_000,
      `bake ${bakeId} to finish`,
    );
    expect(done, JSON.stringify(done)).toMatchObject({ status: "succeeded", services: [{ name: "app", status: "pulled", digest: img.digest }] });
    // The manifest landed in the StateDirectory, owned by the dynamic user.
    const manifest = await m!.exec(["cat", "/var/lib/slothbox/manifest.json"]);
    expect(JSON.parse(manifest.stdout)).toMatchObject({ bakeId, services: [{ name: "app", digest: img.digest }] });
    await m!.waitFor(() => controlPlane.accepted().some((e) => e["bakeId"] === bakeId && e["type"] === "bake.succeeded"), 30_000, "bake.succeeded at the control plane");
  });
});
