import { describe, expect, it } from "vitest";
import { apiTlsProblem, ConfigError, envName, loadConfig, reportingProblem } from "./config.ts";

const none = () => undefined;

function load(file: Record<string, unknown> | undefined, env: Record<string, string> = {}, explicit = false) {
  return loadConfig({ ...(explicit ? { file: "/etc/x.json" } : {}), env, readFile: () => (file ? JSON.stringify(file) : undefined) });
}

function err(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("no ConfigError");
}

describe("loadConfig", () => {
  it("applies SPEC §4 defaults with no file", () => {
    const c = loadConfig({ env: {}, readFile: none });
    expect(c).toMatchObject({
      listen: "127.0.0.1:7457",
      dockerSocket: "/var/run/docker.sock",
      ssmParameterPrefix: "/slothbox/registry-credentials/",
      stateDir: "/var/lib/slothbox",
      pullConcurrency: 6,
      pullTimeoutSeconds: 1800,
      pullInactivityTimeoutSeconds: 60,
      pullRetries: 3,
      credentialCacheSeconds: 300,
      awsMaxWaitSeconds: 600,
      logLevel: "info",
    });
  });

  it("names variables in upper snake case and lets the environment win", () => {
    expect(envName("pullConcurrency")).toBe("SLOTHBOX_PULL_CONCURRENCY");
    expect(envName("controlPlaneUrl")).toBe("SLOTHBOX_CONTROL_PLANE_URL");
    const c = load({ pullConcurrency: 2, stateDir: "/a" }, { SLOTHBOX_PULL_CONCURRENCY: "5" });
    expect(c.pullConcurrency).toBe(5);
    expect(c.stateDir).toBe("/a");
  });

  it("takes the Docker socket from dockerSocket, else DOCKER_HOST, as a path or unix:// URL", () => {
    expect(load(undefined, { DOCKER_HOST: "unix:///tmp/d.sock" }).dockerSocket).toBe("/tmp/d.sock");
    expect(load({ dockerSocket: "/run/x.sock" }, { DOCKER_HOST: "unix:///tmp/d.sock" }).dockerSocket).toBe("/run/x.sock");
    expect(err(() => load(undefined, { DOCKER_HOST: "tcp://1.2.3.4:2375" })).variable).toBe("DOCKER_HOST");
  });

  it("names the key, and the variable when the value came from the environment", () => {
    const e = err(() => load(undefined, { SLOTHBOX_PULL_CONCURRENCY: "many" }));
    expect(e.key).toBe("pullConcurrency");
    expect(e.message).toContain("SLOTHBOX_PULL_CONCURRENCY");
    const f = err(() => load({ pullRetries: -1 }));
    expect(f.key).toBe("pullRetries");
    expect(f.variable).toBeUndefined();
  });

  it("refuses unknown keys, a missing --config file, and bad JSON", () => {
    expect(err(() => load({ pulConcurrency: 3 })).key).toBe("pulConcurrency");
    expect(err(() => loadConfig({ file: "/nope.json", env: {}, readFile: none })).message).toContain("/nope.json");
    expect(err(() => loadConfig({ env: {}, readFile: () => "{" })).key).toBe("config");
  });

  it("needs boxId and a token file to report to a control plane, not to load (a baked image's config has neither)", () => {
    const baked = load({ controlPlaneUrl: "http://127.0.0.1:1" });
    expect(reportingProblem(baked)?.key).toBe("boxId");
    expect(reportingProblem({ ...baked, boxId: "b1" })).toBeUndefined();
    expect(baked.controlPlaneTokenFile).toBe("/etc/slothbox/control-plane-token");
    expect(baked.apiTokenFile).toBe("/etc/slothbox/api-token");
    expect(reportingProblem(load({}))).toBeUndefined();
    expect(err(() => load({ controlPlaneUrl: "ftp://x", boxId: "b1" })).key).toBe("controlPlaneUrl");
  });

  it("refuses a control plane reached over plain http unless it is on loopback", () => {
    const base = { boxId: "b", controlPlaneTokenFile: "/t" };
    const e = err(() => load({ ...base, controlPlaneUrl: "http://cp.example.com" }));
    expect(e.key).toBe("controlPlaneUrl");
    expect(e.message).toMatch(/https/);
    expect(load({ ...base, controlPlaneUrl: "https://cp.example.com" }).controlPlaneUrl).toBe("https://cp.example.com");
    for (const u of ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"]) expect(load({ ...base, controlPlaneUrl: u }).controlPlaneUrl).toBe(u);
  });

  it("has SPEC §4's image cleanup keys, defaults and environment forms", () => {
    expect(load({})).toMatchObject({ imageCleanup: true, imageCleanupKeepBakes: 1, imageCleanupIntervalSeconds: 3600, imageCleanupMinAgeSeconds: 3600 });
    expect(load({}, { SLOTHBOX_IMAGE_CLEANUP: "false", SLOTHBOX_IMAGE_CLEANUP_KEEP_BAKES: "3" })).toMatchObject({ imageCleanup: false, imageCleanupKeepBakes: 3 });
    const e = err(() => load({}, { SLOTHBOX_IMAGE_CLEANUP: "maybe" }));
    expect(e).toMatchObject({ key: "imageCleanup", variable: "SLOTHBOX_IMAGE_CLEANUP" });
    expect(err(() => load({ imageCleanupIntervalSeconds: 0 })).key).toBe("imageCleanupIntervalSeconds");
  });
});

describe("TLS for the API (SPEC §4)", () => {
  it("takes tlsCertFile and tlsKeyFile from the file or SLOTHBOX_TLS_CERT_FILE / SLOTHBOX_TLS_KEY_FILE, as absolute paths", () => {
    expect(load({ tlsCertFile: "/etc/slothbox/api.pem", tlsKeyFile: "/etc/slothbox/api.key" })).toMatchObject({ tlsCertFile: "/etc/slothbox/api.pem", tlsKeyFile: "/etc/slothbox/api.key" });
    expect(load({}, { SLOTHBOX_TLS_CERT_FILE: "/c.pem", SLOTHBOX_TLS_KEY_FILE: "/k.pem" })).toMatchObject({ tlsCertFile: "/c.pem", tlsKeyFile: "/k.pem" });
    const e = err(() => load({}, { SLOTHBOX_TLS_KEY_FILE: "k.pem" }));
    expect(e.key).toBe("tlsKeyFile");
    expect(e.variable).toBe("SLOTHBOX_TLS_KEY_FILE");
    const defaults = load({});
    expect(defaults.tlsCertFile).toBeUndefined();
    expect(defaults.tlsKeyFile).toBeUndefined();
  });

  it("requires both files when listen is not a loopback address, naming the key", () => {
    for (const listen of ["0.0.0.0:7457", "10.0.0.5:7457", "[::]:7457", "box.internal:7457"]) {
      const p = apiTlsProblem(load({ listen }));
      expect(p?.key, listen).toBe("tlsCertFile");
      expect(p?.message).toContain(`listen (${listen}) is not a loopback address`);
      expect(apiTlsProblem(load({ listen, tlsCertFile: "/c.pem" }))?.key).toBe("tlsKeyFile");
      expect(apiTlsProblem(load({ listen, tlsCertFile: "/c.pem", tlsKeyFile: "/k.pem" }))).toBeUndefined();
    }
  });

  it("lets loopback serve plain HTTP, or TLS when both files are given, never one without the other", () => {
    for (const listen of ["127.0.0.1:7457", "localhost:7457", "[::1]:7457"]) expect(apiTlsProblem(load({ listen }))).toBeUndefined();
    expect(apiTlsProblem(load({ tlsCertFile: "/c.pem", tlsKeyFile: "/k.pem" }))).toBeUndefined();
    expect(apiTlsProblem(load({ tlsCertFile: "/c.pem" }))?.key).toBe("tlsKeyFile");
    expect(apiTlsProblem(load({ tlsKeyFile: "/k.pem" }))?.key).toBe("tlsCertFile");
  });
});
