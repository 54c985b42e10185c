// The box as it really is: the packaged agent under a real systemd 252 (Debian
// 12, booted in systemd-nspawn), installed with install.sh as the Packer
// template installs it, run by its own units against the stack's dockerd, the
// AWS stand-in and a control plane. Readiness, the watchdog, restarts, exit 78,
// the dynamic user and its credentials, reload, stop, the journal, a root
// `bake` beside the daemon, and boxes that lack a docker group, /bin/kill, or
// their first-boot tokens.
import { rmSync, statSync } from "node:fs";
import path from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { ControlPlane, kept } from "../stack/control-plane.ts";
import { startDockerd, type Dockerd } from "../stack/dockerd.ts";
import { pushRandomImage, type PushedImage } from "../stack/images.ts";
import { freePort } from "../e2e/daemon-harness.ts";
import { PREFIX, uid } from "../e2e/harness.ts";
import { boot, ensureRootfs, packageAgent, skipReason, type AgentPackage, type Machine, type Rootfs } from "./nspawn.ts";

const UNIT = "slothbox-agent.service";
const PATH_UNIT = "slothbox-agent.path";
/** A cold rootfs build (mmdebstrap, ~20 s here) plus packaging and boot, with room for a slow mirror. */
const SETUP_TIMEOUT_MS = 600_000;
/** Short enough to watch it work, long enough for a loaded machine: the agent pings at half of it. */
const WATCHDOG_SEC = 3;

const reason = skipReason();
if (reason) console.warn(`skipping the systemd-nspawn tests: ${reason}`);

const stack = inject("stack");
// The boxes' own dockerd, its data root outside /tmp (the agent's PrivateTmp would hide it) and bound
// into each box at the same path: the agent checks the disk reserve where the engine keeps images, as on a box.
const engineDir = `/var/lib/sbx-box-${uid()}`;
let engine: Dockerd | undefined;
let docker: Docker;
const aws = new AwsStandIn();
const controlPlane = new ControlPlane(`cp-${uid()}`);
let rootfs: Rootfs | undefined;
let pkg: AgentPackage | undefined;
const machines: Machine[] = [];

beforeAll(async () => {
  if (reason) return;
  await aws.start();
  await controlPlane.start();
  aws.putParameter(`${PREFIX}rc_gh`, stack.registries.ghcr.password!);
  engine = await startDockerd({ dir: engineDir, hosts: Object.fromEntries(Object.values(stack.registries).map((r) => [r.host, r.address])) });
  docker = new Docker({ socketPath: engine.socketPath });
  // The docker group inside must carry the GID of the group that owns the engine's
  // socket (dockerd gives it its `docker` group), or the DynamicUser cannot use it.
  rootfs = await ensureRootfs({ dockerGid: statSync(engine.socketPath).gid });
  pkg = await packageAgent();
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  for (const m of machines) await m.cleanup();
  pkg?.cleanup();
  await controlPlane.stop();
  await aws.stop();
  await engine?.stop();
  rmSync(engineDir, { recursive: true, force: true });
}, 120_000);

/** A box: booted, the package installed, the AWS stand-in's endpoints given to the unit (on EC2, IMDS is at its fixed address). */
async function box(opts: { config: Record<string, unknown>; dockerGroup?: boolean; tokens?: boolean }): Promise<Machine> {
  const m = await boot({ rootfs: rootfs!, dockerSocket: engine!.socketPath, bindReadOnly: [path.join(engineDir, "data")], agentPackage: pkg!, dockerGroup: opts.dockerGroup ?? true });
  machines.push(m);
  const install = await m.installAgent(opts.config);
  expect(install.code, install.stderr).toBe(0);
  const env = Object.entries(aws.env()).map(([k, v]) => `Environment=${k}=${v}`);
  // NODE_DEBUG and NODE_OPTIONS set as a box's own drop-in could: the unit must drop them, and keep NODE_EXTRA_CA_CERTS.
  const node = ["Environment=NODE_DEBUG=net NODE_OPTIONS=--no-warnings NODE_EXTRA_CA_CERTS=/etc/slothbox/private-ca.pem"];
  await m.writeFile("/etc/slothbox/private-ca.pem", stack.registries.dockerhub.push.ca!, 0o644);
  await m.writeFile(`/etc/systemd/system/${UNIT}.d/test.conf`, ["[Service]", ...env, ...node, `WatchdogSec=${WATCHDOG_SEC}s`, ""].join("\n"));
  expect((await m.systemctl(["daemon-reload"])).code).toBe(0);
  return m;
}

const apiOf = (url: string, token: string) => async (method: string, p: string, body?: unknown) => {
  const res = await fetch(url + p, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
};

async function healthz(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })).status === 200;
  } catch {
    return false;
  }
}

/** Waits for `active` and returns the state then, failing fast with the journal if the unit fails. */
async function activeState(m: Machine, url: string) {
  return m.waitFor(
    async () => {
      const s = await m.unitState(UNIT);
      if (s.ActiveState === "failed") throw new Error(`unit failed:\n${(await m.journal(UNIT)).join("\n")}`);
      return s.ActiveState === "active" && s.MainPID > 0 ? { state: s, healthy: await healthz(url) } : undefined;
    },
    60_000,
    `${UNIT} to become active`,
  );
}

async function bakeDone(api: ReturnType<typeof apiOf>, m: Machine, bakeId: string) {
  return m.waitFor(
    async () => {
      const r = await api("GET", `/v1/bakes/${bakeId}`);
      return r.status === 200 && r.json["status"] !== "running" ? r.json : undefined;
    },
    60_000,
    `bake ${bakeId} to finish`,
  );
}

describe.skipIf(reason !== undefined)(`a box under systemd 252${reason ? ` (skipped: ${reason})` : ""}`, () => {
  const apiToken = `api-${uid()}${uid()}`;
  let m: Machine;
  let url = "";
  let api: ReturnType<typeof apiOf>;
  let boxId = "";
  /** Each test starts from a running agent, whatever ran before it. */
  // The tests start and stop it often: the start limit (10 in 5 min) must not count them.
  const running = async () => {
    await m.systemctl(["reset-failed", UNIT]);
    expect((await m.systemctl(["start", UNIT])).code).toBe(0);
    return activeState(m, url);
  };
  const bakeImage = async (img: PushedImage) => {
    const bakeId = `bk_${uid()}`;
    await api("POST", "/v1/bakes", { bakeId, orgId: "o", services: [{ name: "app", image: img.reference }] });
    expect(await bakeDone(api, m, bakeId)).toMatchObject({ status: "succeeded" });
    return bakeId;
  };

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    api = apiOf(url, apiToken);
    boxId = `box-${uid()}`;
    // stateDir and dockerSocket stay at their defaults (/var/lib/slothbox, /var/run/docker.sock).
    m = await box({ config: { boxId, controlPlaneUrl: controlPlane.url, listen: `127.0.0.1:${port}`, awsRegion: "us-east-1", pullRetries: 0 } });
    await m.writeFile("/etc/slothbox/api-token", apiToken + "\n", 0o600);
    await m.writeFile("/etc/slothbox/control-plane-token", controlPlane.token + "\n", 0o600);
    expect((await m.systemctl(["enable", UNIT, PATH_UNIT])).code).toBe(0);
  }, SETUP_TIMEOUT_MS);

  it("goes active only once /healthz answers (Type=notify), and says what it does in its status text", async () => {
    expect((await m.systemctl(["start", "--no-block", UNIT])).code).toBe(0);
    const active = await activeState(m, url);
    expect(active.healthy).toBe(true);
    // Active while it may still be reconciling at start (a loaded machine); the text says so, then what it serves.
    expect(active.state.StatusText).toMatch(/^(reconciling \(start\)|serving on 127\.0\.0\.1:\d+; (no bake yet|reconciled \(nothing to do\)))$/);
    const deadline = Date.now() + 15_000;
    let text = active.state.StatusText;
    while (!text.startsWith("serving") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      text = (await m.unitState(UNIT)).StatusText;
    }
    expect(text).toMatch(/^serving on 127\.0\.0\.1:\d+; (no bake yet|reconciled \(nothing to do\))$/);
    const lines = await m.journal(UNIT, { output: "cat" });
    const serving = lines.findIndex((l) => l.includes("slothbox-agent daemon serving"));
    const started = lines.findIndex((l) => l.startsWith("Started slothbox-agent.service"));
    expect(serving, lines.join("\n")).toBeGreaterThanOrEqual(0);
    expect(started).toBeGreaterThan(serving);
    // The dynamic user runs it, with the docker group among its groups.
    const ids = await m.exec(["ps", "-o", "uid=,supgid=", "-p", String(active.state.MainPID)]);
    const [uidText, groups] = ids.stdout.trim().split(/\s+/);
    expect(Number(uidText)).toBeGreaterThanOrEqual(61184);
    expect(groups?.split(",")).toContain(String(statSync(engine!.socketPath).gid));
    // Its environment: no shared AWS files, no NODE_DEBUG or NODE_OPTIONS, the private CA kept.
    const environ = (await m.exec(["cat", `/proc/${active.state.MainPID}/environ`])).stdout.split("\0");
    expect(environ).toEqual(expect.arrayContaining(["AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "NODE_EXTRA_CA_CERTS=/etc/slothbox/private-ca.pem"]));
    expect(environ.filter((e) => /^NODE_(DEBUG|OPTIONS)=/.test(e))).toEqual([]);
  });

  it("rates an exposure of at most 2.0 (the preflight 3.0) in the running systemd's `systemd-analyze security`", async () => {
    const r = await m.exec(["systemd-analyze", "security", "--no-pager", UNIT]);
    const score = Number(/Overall exposure level for slothbox-agent\.service: ([\d.]+)/.exec(r.stdout)?.[1]);
    expect(score, r.stdout + r.stderr).toBeGreaterThanOrEqual(0);
    expect(score).toBeLessThanOrEqual(2.0);
    const pf = await m.exec(["systemd-analyze", "security", "--no-pager", "slothbox-agent-preflight.service"]);
    const pfScore = Number(/Overall exposure level for slothbox-agent-preflight\.service: ([\d.]+)/.exec(pf.stdout)?.[1]);
    expect(pfScore, pf.stdout + pf.stderr).toBeGreaterThanOrEqual(0);
    expect(pfScore).toBeLessThanOrEqual(3.0);
    // Hardened, it still finds the docker group: the agent started after it (the test above).
    expect((await m.unitState("slothbox-agent-preflight.service")).ActiveState).not.toBe("failed");
  });

  it("bakes over the API through the docker socket, with a token credential from SSM though the dynamic user has no home entry", async () => {
    const n = uid();
    const [api1, anon] = await Promise.all([
      pushRandomImage(stack.registries.ghcr.push, `acme/box-${n}`, "1"),
      pushRandomImage(stack.registries.quay.push, `smoke/box-${n}`, "1"),
    ]);
    await running();
    const bakeId = `bk_${n}`;
    const posted = await api("POST", "/v1/bakes", {
      bakeId,
      orgId: "org_1",
      registryCredentials: [{ id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" }],
      services: [
        { name: "api", image: api1.reference, registryCredentialId: "rc_gh" },
        { name: "app", image: anon.reference },
      ],
    });
    expect(posted).toMatchObject({ status: 202, json: { bakeId } });
    const done = await bakeDone(api, m, bakeId);
    expect(done, JSON.stringify(done)).toMatchObject({
      status: "succeeded",
      services: [
        { name: "api", status: "pulled", digest: api1.digest },
        { name: "app", status: "pulled", digest: anon.digest },
      ],
    });
    expect((await m.unitState(UNIT)).StatusText).toMatch(new RegExp(`last bake ${bakeId} succeeded`));
    await m.waitFor(() => controlPlane.accepted().some((e) => e["bakeId"] === bakeId && e["type"] === "bake.succeeded"), 30_000, "bake.succeeded at the control plane");
    const journal = (await m.journal(UNIT, { output: "cat" })).join("\n");
    expect(journal).not.toContain(stack.registries.ghcr.password!);
    // The hardened unit (DynamicUser, ProtectSystem=strict, PrivateTmp) still sees Docker's data root: the reserve was checked.
    expect(journal).toMatch(new RegExp(`disk: [\\d.]+ [kMG]?B free on ${path.join(engineDir, "data")}, reserve [\\d.]+ [kMG]?B`));
    expect(journal).not.toContain("disk reserve not checked");
  });

  it("writes journal lines a person reads with -o cat: JSON with level names, and failures at warning priority with code and hint", async () => {
    await running();
    const bakeId = `bk_${uid()}`;
    // A private image without its credential: the registry answers it as not found.
    await api("POST", "/v1/bakes", { bakeId, orgId: "o", services: [{ name: "private", image: `ghcr.io/acme/box-missing-${uid()}:1` }] });
    expect(await bakeDone(api, m, bakeId)).toMatchObject({ status: "failed" });
    const lines = await m.journal(UNIT, { output: "cat" });
    const json = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json.length).toBeGreaterThan(3);
    expect(json.every((l) => typeof l["level"] === "string" && typeof l["time"] === "string" && typeof l["msg"] === "string")).toBe(true);
    const warnings = (await m.exec(["journalctl", "-u", UNIT, "-p", "warning", "-o", "cat", "--no-pager", "-q"])).stdout;
    expect(warnings).toMatch(new RegExp(`bake ${bakeId}: service private \\(ghcr\\.io/acme/box-missing-\\w+:1\\) failed: image_not_found: .* — hint: `));
    expect(warnings).not.toContain("slothbox-agent daemon serving");
  });

  it("lets no other user read its state or its credentials", async () => {
    await running();
    await bakeImage(await pushRandomImage(stack.registries.quay.push, `smoke/perm-${uid()}`, "1"));
    expect((await m.exec(["stat", "-c", "%a %U", "/var/lib/private/slothbox"])).stdout.trim()).toMatch(/^700 /);
    for (const f of ["/var/lib/slothbox/manifest.json", `/run/credentials/${UNIT}/api-token`, "/etc/slothbox/api-token"]) {
      const r = await m.exec(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", f]);
      expect(r.code, `${f} readable by nobody: ${r.stdout}`).not.toBe(0);
    }
  });

  it("keeps a healthy agent alive past twice WatchdogSec, and the watchdog restarts a hung one (SIGSTOP)", async () => {
    await running();
    const before = await m.unitState(UNIT);
    await new Promise((r) => setTimeout(r, 2 * WATCHDOG_SEC * 1000 + 1500));
    const later = await m.unitState(UNIT);
    expect(later).toMatchObject({ ActiveState: "active", MainPID: before.MainPID, NRestarts: before.NRestarts });
    await m.exec(["kill", "-STOP", String(later.MainPID)]);
    const restarted = await m.waitFor(
      async () => {
        const s = await m.unitState(UNIT);
        return s.ActiveState === "active" && s.MainPID !== later.MainPID ? s : undefined;
      },
      30_000,
      "the watchdog to restart the hung agent",
    );
    expect(restarted.NRestarts).toBe(later.NRestarts + 1);
    expect((await m.journal(UNIT, { output: "cat" })).join("\n")).toMatch(/Watchdog timeout/);
  });

  it("is restarted after SIGKILL, and its state directory survives the restart", async () => {
    const before = await running();
    const last = await bakeImage(await pushRandomImage(stack.registries.quay.push, `smoke/kill-${uid()}`, "1"));
    await m.exec(["kill", "-KILL", String(before.state.MainPID)]);
    const after = await m.waitFor(
      async () => {
        const s = await m.unitState(UNIT);
        return s.ActiveState === "active" && s.MainPID !== before.state.MainPID && (await healthz(url)) ? s : undefined;
      },
      30_000,
      "a restart after SIGKILL",
    );
    expect(after.NRestarts).toBe(before.state.NRestarts + 1);
    expect(await api("GET", `/v1/bakes/${last}`)).toMatchObject({ status: 200, json: { bakeId: last } });
  });

  it("reconciles on systemctl reload: an image removed behind its back comes back by digest, under its tag", async () => {
    await running();
    const baked = await pushRandomImage(stack.registries.quay.push, `smoke/reload-${uid()}`, "1");
    await bakeImage(baked);
    await docker.getImage(baked.reference).remove({ force: true });
    expect((await m.systemctl(["reload", UNIT])).code).toBe(0);
    const id = await m.waitFor(async () => (await docker.getImage(baked.reference).inspect().catch(() => undefined))?.Id, 30_000, "the image back under its tag");
    expect(id).toBe(baked.imageId);
  });

  it("delivers the events of a root `bake` run beside it, written while the control plane was down", async () => {
    await running();
    const img = await pushRandomImage(stack.registries.quay.push, `smoke/rootbake-${uid()}`, "1");
    const bakeId = `bk_root_${uid()}`;
    await m.writeFile("/root/spec.json", JSON.stringify({ bakeId, orgId: "o", services: [{ name: "app", image: img.reference }] }));
    await controlPlane.stop();
    try {
      const env = Object.fromEntries(Object.entries(aws.env()));
      const r = await m.exec(["slothbox-agent", "bake", "--spec", "/root/spec.json"], { env: { ...env, PATH: "/usr/local/bin:/usr/bin:/bin" }, timeoutMs: 60_000 });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/3 waiting in \/var\/lib\/slothbox\/outbox for the daemon to deliver/);
      const owners = await m.exec("stat -c %U /var/lib/slothbox/outbox /var/lib/slothbox/outbox/*.json | sort -u");
      expect(owners.stdout.trim()).not.toContain("root");
    } finally {
      await controlPlane.start();
    }
    await m.waitFor(() => controlPlane.accepted().filter((e) => e["bakeId"] === bakeId).length === 3, 60_000, "the daemon to deliver the root bake's events");
    expect((await m.journal(UNIT, { output: "cat" })).join("\n")).not.toMatch(/cannot be read|unreadable|EACCES/);
  });

  it("on systemctl stop during a bake: reports it interrupted, flushes the outbox and exits 0 within TimeoutStopSec, telling systemd it stops", async () => {
    await running();
    const repo = `acme/boxstop-${uid()}`;
    await pushRandomImage(stack.registries.quay.push, repo, "1", { layers: 1, bytes: 512 * 1024 });
    const bakeId = `bk_stop_${uid()}`;
    expect((await api("POST", "/v1/bakes", { bakeId, orgId: "o", services: [{ name: "s", image: `${stack.registries.stall.host}/${repo}:1` }] })).status).toBe(202);
    await new Promise((r) => setTimeout(r, 1000));
    const stop = await m.systemctl(["stop", UNIT], { timeoutMs: 60_000 });
    expect(stop.code).toBe(0);
    expect(stop.ms).toBeLessThan(30_000);
    const s = await m.unitState(UNIT);
    expect(s).toMatchObject({ ActiveState: "inactive", ExecMainStatus: 0 });
    const sent = controlPlane.accepted().filter((e) => e["bakeId"] === bakeId);
    expect(sent.map((e) => e["type"]).filter(kept)).toEqual(["bake.started", "service.failed", "bake.failed"]);
    expect(sent[2]).toMatchObject({ error: { code: "interrupted" } });
    expect((await m.exec("ls /var/lib/slothbox/outbox | grep -c json || true")).stdout.trim()).toBe("0");
    // Node wrote its compile cache at exit into the unit's CacheDirectory (PrivateTmp would have thrown it away): the next start reads it.
    expect(Number((await m.exec("find /var/cache/private/slothbox -type f | wc -l")).stdout.trim())).toBeGreaterThan(0);
    // STOPPING=1 goes through systemd-notify, a child: it must not be killed with the stop (KillMode=mixed).
    for (let i = 0; i < 4; i++) {
      await running();
      expect((await m.systemctl(["stop", UNIT])).code).toBe(0);
    }
    expect((await m.journal(UNIT, { output: "cat" })).join("\n")).not.toContain("sd_notify failed");
  });

  it("ends at exit 78 on an invalid configuration: failed, not restarted, and the journal names the key", async () => {
    await m.systemctl(["stop", UNIT]);
    await m.systemctl(["reset-failed", UNIT]);
    const good = (await m.exec(["cat", "/etc/slothbox/agent.json"])).stdout;
    await m.writeFile("/etc/slothbox/agent.json", JSON.stringify({ ...JSON.parse(good), pullConcurrency: "lots" }));
    try {
      await m.systemctl(["start", "--no-block", UNIT]);
      const failed = await m.waitFor(async () => {
        const s = await m.unitState(UNIT);
        return s.ActiveState === "failed" ? s : undefined;
      }, 30_000, "the unit to fail").catch(async (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(await m.unitState(UNIT))}\n${(await m.journal(UNIT, { output: "cat" })).slice(-15).join("\n")}`);
      });
      expect(failed).toMatchObject({ ExecMainStatus: 78, Result: "exit-code" });
      await new Promise((r) => setTimeout(r, 7000));
      expect((await m.unitState(UNIT)).ActiveState).toBe("failed");
      expect((await m.unitState(UNIT)).NRestarts).toBe(0);
      expect((await m.journal(UNIT, { output: "cat" })).join("\n")).toMatch(/invalid configuration: pullConcurrency/);
    } finally {
      await m.writeFile("/etc/slothbox/agent.json", good);
    }
  });
});

describe.skipIf(reason !== undefined)("boxes that lack something", () => {
  it("a box without a docker group: the start is refused with the reason in the unit's journal, no restart loop", async () => {
    const m = await box({ config: {}, dockerGroup: false });
    await m.writeFile("/etc/slothbox/api-token", "t\n", 0o600);
    await m.systemctl(["start", UNIT]);
    await new Promise((r) => setTimeout(r, 7000));
    const s = await m.unitState(UNIT);
    expect(s.ActiveState).not.toBe("failed");
    expect(s.NRestarts).toBe(0);
    const journal = (await m.journal(UNIT, { output: "cat" })).join("\n");
    expect(journal).toMatch(/slothbox-agent not started: this box has no docker group/);
  });

  it("an image baked without box tokens: the unit waits for them (no failure), starts when they arrive, and reports under the boxId it got at first boot", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    // What Packer bakes: the control plane's address, no boxId, no tokens.
    const m = await box({ config: { controlPlaneUrl: controlPlane.url, listen: `127.0.0.1:${port}`, awsRegion: "us-east-1" } });
    expect((await m.systemctl(["enable", UNIT, PATH_UNIT])).code).toBe(0);
    // A reboot as the first boot of the image: the units start from multi-user.target.
    await m.systemctl(["start", PATH_UNIT, UNIT]);
    await new Promise((r) => setTimeout(r, 3000));
    const waiting = await m.unitState(UNIT);
    expect(waiting.ActiveState).toBe("inactive");
    expect(waiting.NRestarts).toBe(0);
    expect((await m.unitState(PATH_UNIT)).ActiveState).toBe("active");
    // User data, later: the box's identity and control-plane token, then the API token last.
    const apiToken = `api-${uid()}`;
    const firstBootId = `box-first-${uid()}`;
    await m.writeFile("/etc/slothbox/box.env", `SLOTHBOX_BOX_ID=${firstBootId}\n`, 0o644);
    await m.writeFile("/etc/slothbox/control-plane-token", controlPlane.token + "\n", 0o600);
    await m.writeFile("/etc/slothbox/api-token", apiToken + "\n", 0o600);
    expect((await activeState(m, url)).healthy).toBe(true);
    const img = await pushRandomImage(stack.registries.quay.push, `smoke/firstboot-${uid()}`, "1");
    const bakeId = `bk_first_${uid()}`;
    const api = apiOf(url, apiToken);
    await api("POST", "/v1/bakes", { bakeId, orgId: "o", services: [{ name: "app", image: img.reference }] });
    expect(await bakeDone(api, m, bakeId)).toMatchObject({ status: "succeeded" });
    await m.waitFor(() => controlPlane.deliveries.some((d) => d.bakeId === bakeId && d.boxId === firstBootId && d.body["type"] === "bake.succeeded"), 30_000, "events under the first-boot boxId");
    // And without /bin/kill (no procps): reload still reconciles.
    await m.exec("rm -f /bin/kill /usr/bin/kill");
    expect((await m.systemctl(["reload", UNIT])).code).toBe(0);
    await m.waitFor(async () => (await m.journal(UNIT, { output: "cat" })).some((l) => l.includes("reconcile (SIGHUP)")), 15_000, "a reconcile after reload");
  });

  it("a box without a control plane and without a control-plane token starts", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const m = await box({ config: { listen: `127.0.0.1:${port}` } });
    await m.writeFile("/etc/slothbox/api-token", "api-token-x\n", 0o600);
    await m.systemctl(["start", UNIT]);
    expect((await activeState(m, url)).healthy).toBe(true);
    expect((await m.unitState(UNIT)).NRestarts).toBe(0);
  });
});
