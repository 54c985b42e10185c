// What each engine says for each registry refusal of the stack, raw: the
// Engine API's answer to a pull (POST /images/create) and to a login
// (POST /auth), and what GET /distribution/<name>/json answers with the same
// credential — the registry's own words where the pull lost them. Then what it
// says of its own findings: content that does not match its digest (a
// tampered manifest, a tampered layer) and a data root that fills. Writes one
// JSON object per case, in test/fixtures/engine-texts.json's form (a login that
// passed is left out); README's failure table is made from its output.
//
//   node test/bench/refusal-probe.ts [OUT.json]   (SLOTHBOX_TEST_ENGINE picks the engine;
//   SLOTHBOX_PROBE_CASES, a regular expression, picks the cases: "revoked after login")
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { engineFromEnv, engineName, startDockerd, type Dockerd } from "../stack/dockerd.ts";
import { pushRandomImage } from "../stack/images.ts";
import { injectFault } from "../stack/registry-front.ts";
import { ECR_HOST, startStack, type RegistryInfo } from "../stack/stack.ts";
import { revokeAfterLogin } from "../stack/token-server.ts";

const engine = engineFromEnv();
const stack = await startStack({ engines: [engine] });
let socketPath = stack.info.socketPath;

function engineApi(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const authHeader = (username: string, password: string, serveraddress: string) => {
  const raw = Buffer.from(JSON.stringify({ username, password, serveraddress })).toString("base64url");
  return raw + "=".repeat((4 - (raw.length % 4)) % 4);
};

/** The last line of a pull: an HTTP error, or the stream's errorDetail, or its last status. */
async function pull(ref: string, auth?: string): Promise<{ status: number; message: string }> {
  // A digest goes in `tag`, as the agent sends it.
  const at = ref.includes("@") ? ref.indexOf("@") : ref.lastIndexOf(":");
  const r = await engineApi("POST", `/images/create?fromImage=${encodeURIComponent(ref.slice(0, at))}&tag=${encodeURIComponent(ref.slice(at + 1))}`, auth ? { "X-Registry-Auth": auth } : {});
  if (r.status !== 200) return { status: r.status, message: (JSON.parse(r.text) as { message: string }).message };
  const lines = r.text.trim().split("\n").map((l) => JSON.parse(l) as { error?: string; status?: string });
  const err = lines.find((l) => l.error);
  return { status: 200, message: err?.error ?? `OK ${lines.at(-1)?.status}` };
}

/** The Engine API's error answer as the agent reads it: its `message`. */
function answer(r: { status: number; text: string }): { status: number; message: string } {
  try {
    return { status: r.status, message: (JSON.parse(r.text) as { message?: string }).message ?? r.text.trim() };
  } catch {
    return { status: r.status, message: r.text.trim() };
  }
}

const only = new RegExp(process.env["SLOTHBOX_PROBE_CASES"] ?? "");
const results: Record<string, unknown>[] = [];
async function probe(name: string, reg: RegistryInfo, ref: string, creds: { user: string; password: string } | undefined) {
  if (!only.test(name)) return;
  const server = reg.host === "registry-1.docker.io" ? "https://index.docker.io/v1/" : reg.host;
  const auth = creds ? authHeader(creds.user, creds.password, server) : undefined;
  const pulled = await pull(ref, auth);
  const login = creds ? await engineApi("POST", "/auth", {}, JSON.stringify({ username: creds.user, password: creds.password, serveraddress: server })) : undefined;
  const dist = await engineApi("GET", `/distribution/${ref}/json`, auth ? { "X-Registry-Auth": auth } : {});
  const row = { engine: engineName(engine), case: name, pull: pulled, distribution: answer(dist), ...(login && login.status !== 200 ? { login: answer(login) } : {}) };
  results.push(row);
  console.log(JSON.stringify(row));
}

try {
  const R = stack.info.registries;
  const n = () => randomBytes(3).toString("hex");
  const kinds: [string, RegistryInfo, string, string][] = [
    ["dockerhub", R.dockerhub, "acme/tool", "docker.io/"],
    ["ghcr", R.ghcr, "acme/api", "ghcr.io/"],
    ["gcr", R.gcr, "acme-project/app", "gcr.io/"],
    ["pkgdev", R.pkgdev, "acme-project/containers/app", "europe-west1-docker.pkg.dev/"],
    ["quay", R.quay, "acmecorp/app", "quay.io/"],
    ["digitalocean", R.digitalocean, "acme/app", "registry.digitalocean.com/"],
    ["acr", R.acr, "app/api", "acme.azurecr.io/"],
    ["gitlab", R.gitlab, "acme/project/app", "registry.gitlab.com/"],
    ["ecr", R.ecr, "team/app", `${ECR_HOST}/`],
  ];
  for (const [kind, reg, repo, prefix] of kinds) {
    const img = await pushRandomImage(reg.push, `${repo}-${n()}`, "1");
    const ref = `${prefix}${img.repository}:1`;
    const good = { user: reg.user!, password: reg.password! };
    await probe(`${kind} wrong secret`, reg, ref, { user: good.user, password: kind === "ecr" ? "wrong-" + n() : "revoked-" + n() });
    await probe(`${kind} no credential`, reg, ref, undefined);
    await probe(`${kind} unknown tag`, reg, `${prefix}${img.repository}:nope`, good);
    const elsewhere = kind === "ecr" ? `denied/app-${n()}` : `other-${n()}/secret`;
    await pushRandomImage(reg.push, elsewhere, "1");
    await probe(`${kind} not allowed`, reg, `${prefix}${elsewhere}:1`, good);
    if (kind === "ecr") await probe("ecr expired token", reg, ref, { user: "AWS", password: "expired-" + n() });
    if (reg.tokenService && only.test(`${kind} revoked after login`)) {
      await revokeAfterLogin(stack.info.tokenServerUrl, reg.tokenService, img.repository, 100);
      await probe(`${kind} revoked after login`, reg, ref, good);
      await revokeAfterLogin(stack.info.tokenServerUrl, reg.tokenService, img.repository, 0);
    }
    if (kind !== "dockerhub" && only.test(`${kind} rate limited`)) {
      await injectFault(reg.url, img.repository, "ratelimit", 50);
      await probe(`${kind} rate limited`, reg, ref, good);
    }
  }
  if (["load balancer 502", "tampered manifest", "tampered layer", "disk full"].some((c) => only.test(c))) {
    const flaky = await pushRandomImage(R.quay.push, `acme/flaky-${n()}`, "1");
    await injectFault(R.flaky.url, flaky.repository, "badgateway", 50);
    await probe("load balancer 502", R.flaky, `${R.flaky.host}/${flaky.repository}:1`, undefined);
    const manifest = await pushRandomImage(R.quay.push, `acme/tampered-${n()}`, "1");
    await injectFault(R.flaky.url, manifest.repository, "tamper", 50);
    await probe("tampered manifest", R.flaky, `${R.flaky.host}/${manifest.repository}@${manifest.digest}`, undefined);
    const layer = await pushRandomImage(R.quay.push, `acme/tampered-${n()}`, "1", { layers: 1 });
    await injectFault(R.flaky.url, layer.repository, "tamperlayer", 50);
    await probe("tampered layer", R.flaky, `${R.flaky.host}/${layer.repository}:1`, undefined);
    // Two layers of 32 MB for a data root of 48 MB, on a daemon of its own.
    const big = await pushRandomImage(R.quay.push, `acme/big-${n()}`, "1", { layers: 2, bytes: 32 * 1024 * 1024 });
    const dir = `/tmp/sbx-probe-${n()}`;
    let small: Dockerd | undefined;
    try {
      small = await startDockerd({ dir, hosts: { [R.flaky.host]: R.flaky.address }, engine, dataRootSize: "48m" });
      socketPath = small.socketPath;
      await probe("disk full", R.flaky, `${R.flaky.host}/${big.repository}:1`, undefined);
    } finally {
      await small?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  if (process.argv[2]) writeFileSync(process.argv[2], JSON.stringify(results, null, 2) + "\n");
  await stack.stop();
}
