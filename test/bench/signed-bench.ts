// Issue 30's cost of "signed images only", for `npm run bench` (BENCH_ONLY=signed):
// one small image, signed once with cosign 2.5.0 (the classic `.sig` tag) and once
// with a Sigstore bundle (cosign 3's form, @sigstore/sign + @sigstore/oci), baked
// by the built agent pinned by digest, with and without a signature policy, cold
// (not in Docker, no verification in the state dir) and warm (present, and the
// verification reused from <stateDir>/verifications/: reuse needs the digest up
// front, so a tag is verified again on every bake). The agent resolves the stack's
// registries by their real names through the stack's hosts file, as its dockerd does.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type Docker from "dockerode";
import { agentFor } from "../e2e/harness.ts";
import { pushImage, randomLayer, type PushedImage, type RegistryTarget } from "../stack/images.ts";
import { attachBundle, cosignSign, cosignStatement, makeBundle, makeKey } from "../stack/signing.ts";
import { removeImages } from "./engine.ts";
import { fmtMs, summary } from "./stats.ts";

const MB = 1_000_000;

export interface SignedBenchDeps {
  docker: Docker;
  /** The registry the images are pushed to and signed in (anonymous pulls: no credential in the spec). */
  target: RegistryTarget;
  dockerHost: string;
  /** The stack's hosts file for this engine. */
  hostsFile: string;
  work: string;
  env: Record<string, string>;
  rounds: number;
  /** Node flags for the agent: the package launcher's for the CLI. */
  nodeArgs: string[];
  /** Runs `argv` with `env`: wall ms, CPU seconds (user + sys) of the child, exit code, output. */
  run: (argv: string[], env: Record<string, string>) => Promise<{ ms: number; cpu: number; code: number | null; out: string }>;
  log: (line: string) => void;
}

type Case = "no policy, cold" | "policy, cold" | "no policy, warm" | "policy, warm";
const CASES: Case[] = ["no policy, cold", "policy, cold", "no policy, warm", "policy, warm"];

export async function signedBench(d: SignedBenchDeps): Promise<{ rows: string[][]; notes: string[] }> {
  const key = makeKey("p256");
  const policy = { id: "sp_bench", type: "cosign-key", label: "bench key", publicKeys: [key.publicPem] };
  const layers = () => Array.from({ length: 3 }, () => randomLayer(Math.floor((5 * MB) / 3)));
  const forms: { name: string; img: PushedImage }[] = [];
  const classic = await pushImage(d.target, "bench/signed-cosign", "1", layers());
  await cosignSign(d.target, classic.repository, classic.digest, key);
  forms.push({ name: "cosign `.sig`", img: classic });
  const bundled = await pushImage(d.target, "bench/signed-bundle", "1", layers());
  await attachBundle(d.target, bundled.repository, bundled.digest, await makeBundle(key, cosignStatement(bundled.digest)));
  forms.push({ name: "Sigstore bundle", img: bundled });

  const dir = path.join(d.work, "signed");
  const stateDir = path.join(dir, "state");
  mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, "agent.json");
  writeFileSync(configFile, JSON.stringify({ stateDir, dockerSocket: d.dockerHost, awsRegion: "us-east-1", logLevel: "warn" }));
  const argv0 = agentFor({ hostsFileOnly: true, hostsFile: d.hostsFile }, dir, d.nodeArgs);
  let seq = 0;
  const bake = async (img: PushedImage, withPolicy: boolean) => {
    const image = `${img.reference.replace(/:[^:/]+$/, "")}@${img.digest}`;
    const spec = {
      bakeId: `bk_signed_${seq++}`,
      orgId: "org_bench",
      registryCredentials: [],
      ...(withPolicy ? { signaturePolicies: [policy] } : {}),
      services: [{ name: "app", image, catalog: true, ...(withPolicy ? { signaturePolicyId: policy.id } : {}) }],
    };
    const specFile = path.join(dir, "spec.json");
    writeFileSync(specFile, JSON.stringify(spec));
    const r = await d.run([...argv0, "bake", "--spec", specFile, "--config", configFile, "--no-report"], d.env);
    if (r.code !== 0) throw new Error(`agent bake failed:\n${r.out}`);
    const reused = r.out.includes("(verified before; reused)");
    return { ...r, reused };
  };

  const rows: string[][] = [["form", "case", "wall median (min – max)", "agent CPU median (user + sys)", "verification's share, wall / CPU"]];
  const notes: string[] = [];
  for (const form of forms) {
    const ref = `${form.img.reference.replace(/:[^:/]+$/, "")}@${form.img.digest}`;
    const wall: Record<Case, number[]> = Object.fromEntries(CASES.map((c) => [c, []])) as unknown as Record<Case, number[]>;
    const cpu: Record<Case, number[]> = Object.fromEntries(CASES.map((c) => [c, []])) as unknown as Record<Case, number[]>;
    let warmReused = 0;
    // One bake outside the measurement: Node's compile cache and the engine are warm for every case alike.
    await bake(form.img, false);
    for (let round = 0; round < d.rounds; round++) {
      // The cold pair in alternating order, then the warm pair on the image the last cold bake left.
      const cold: Case[] = round % 2 ? ["policy, cold", "no policy, cold"] : ["no policy, cold", "policy, cold"];
      const warm: Case[] = round % 2 ? ["policy, warm", "no policy, warm"] : ["no policy, warm", "policy, warm"];
      for (const c of cold) {
        await removeImages(d.docker, [ref, form.img.reference]);
        if (c === "policy, cold") rmSync(path.join(stateDir, "verifications"), { recursive: true, force: true });
        const r = await bake(form.img, c === "policy, cold");
        if (r.reused) throw new Error(`a cold bake of ${ref} reused a verification: the state dir was not emptied`);
        wall[c].push(r.ms);
        cpu[c].push(r.cpu);
      }
      for (const c of warm) {
        const r = await bake(form.img, c === "policy, warm");
        if (c === "policy, warm" && r.reused) warmReused++;
        wall[c].push(r.ms);
        cpu[c].push(r.cpu);
      }
      d.log(`signed ${form.name}: round ${round + 1}/${d.rounds} ${CASES.map((c) => `${c} ${fmtMs(wall[c].at(-1)!)}`).join(", ")}`);
    }
    const med = (xs: number[]) => summary(xs).median;
    const share = (c: Case, base: Case) => `${fmtMs(med(wall[c]) - med(wall[base]))} / ${Math.round((med(cpu[c]) - med(cpu[base])) * 1000)} ms`;
    for (const c of CASES) {
      const s = summary(wall[c]);
      rows.push([
        form.name,
        c,
        `${fmtMs(s.median)} (${fmtMs(s.min)} – ${fmtMs(s.max)})`,
        `${med(cpu[c]).toFixed(2)} s`,
        c === "policy, cold" ? share(c, "no policy, cold") : c === "policy, warm" ? share(c, "no policy, warm") : "",
      ]);
    }
    notes.push(`${form.name}: the warm bake with a policy said "(verified before; reused)" in ${warmReused} of ${d.rounds} rounds`);
  }
  return { rows, notes };
}
