import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { BakeResult } from "../bake/types.ts";
import type { BakeSpec } from "../spec/schema.ts";
import { writeManifest, type Manifest } from "../state/manifest.ts";
import { FakeDocker } from "../../test/unit/fakes.ts";
import { reconcile } from "./reconcile.ts";

const D = "sha256:" + "e".repeat(64);
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

async function withManifest(services: Partial<Manifest["services"][number]>[]) {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "sbx-reconcile-"));
  dirs.push(stateDir);
  const full = services.map((s) => ({ name: "app", image: "quay.io/acme/app:1", imageId: "sha256:id", digest: D, registry: "quay.io", registryCredentialId: null, credentialType: null, parameterName: null, username: null, usernameIsSecret: false, ...s }));
  await writeManifest(stateDir, { bakeId: "bk_m", bakedAt: new Date().toISOString(), services: full });
  return stateDir;
}

describe("reconcile", () => {
  it("restores a service's tag to the manifest's digest when Docker kept the image but lost the tag", async () => {
    const stateDir = await withManifest([{}]);
    const docker = new FakeDocker().has("quay.io/acme/app", D);
    const runs: BakeSpec[] = [];
    const r = await reconcile({ stateDir, docker, run: async (s) => (runs.push(s), {} as BakeResult) }, new AbortController().signal);
    expect(runs).toEqual([]);
    expect(r).toMatchObject({ checked: 1, missing: [], retagged: ["app"] });
    expect(docker.log).toContain(`tag quay.io/acme/app@${D} quay.io/acme/app:1`);
    expect(await docker.inspectImage("quay.io/acme/app:1")).toBeDefined();
  });

  it("pulls a lost image again by digest, then gives it back its tag", async () => {
    const stateDir = await withManifest([{}]);
    const docker = new FakeDocker();
    const r = await reconcile(
      {
        stateDir,
        docker,
        run: async (s) => {
          docker.has("quay.io/acme/app", D);
          return { bakeId: s.bakeId, status: "succeeded", services: [], startedAt: "", durationMs: 0 };
        },
      },
      new AbortController().signal,
    );
    expect(r).toMatchObject({ missing: ["app"], retagged: ["app"] });
    expect(await docker.inspectImage("quay.io/acme/app:1")).toBeDefined();
  });

  it("leaves alone a tag that already points at the digest, and references pinned by digest", async () => {
    const stateDir = await withManifest([{}, { name: "pinned", image: `quay.io/acme/app@${D}` }]);
    const docker = new FakeDocker().has("quay.io/acme/app", D);
    await docker.tagImage(`quay.io/acme/app@${D}`, "quay.io/acme/app", "1");
    const r = await reconcile({ stateDir, docker, run: async () => ({}) as BakeResult }, new AbortController().signal);
    expect(r).toMatchObject({ checked: 2, missing: [], retagged: [] });
  });
});
