import { describe, expect, it } from "vitest";
import type { ListedImage } from "../docker/port.ts";
import type { Manifest } from "../state/manifest.ts";
import type { PulledImage } from "../state/pulled.ts";
import { FakeDocker } from "../../test/unit/fakes.ts";
import { planCleanup, runCleanup, type CleanupInputs } from "./cleanup.ts";

const H = 3600_000;
const NOW = Date.parse("2026-11-26T12:00:00Z");
const d = (c: string) => "sha256:" + c.repeat(64);

const pulled = (name: string, tag: string, id: string, digest: string, agoMs = 2 * H): PulledImage => ({
  ref: `${name}:${tag}`,
  name,
  digest,
  imageId: id,
  pulledAt: new Date(NOW - agoMs).toISOString(),
  bakeId: "bk_old",
  file: `/state/images/${id}.json`,
});

const manifest = (bakeId: string, services: { image: string; imageId: string; digest: string }[]): Manifest => ({
  bakeId,
  bakedAt: new Date(NOW).toISOString(),
  services: services.map((s, i) => ({ name: `s${i}`, registry: "ghcr.io", registryCredentialId: null, credentialType: null, parameterName: null, username: null, ...s })),
});

const image = (id: string, tags: string[], digests: string[]): ListedImage => ({ id, repoTags: tags, repoDigests: digests, size: 10_000_000 });

function inputs(over: Partial<CleanupInputs>): CleanupInputs {
  return { pulled: [], kept: [], images: [], containers: [], running: [], now: NOW, minAgeMs: H, ...over };
}

describe("planCleanup", () => {
  const v1 = pulled("ghcr.io/acme/api", "1", d("1"), d("a"));
  const v2 = pulled("ghcr.io/acme/api", "2", d("2"), d("b"));
  const v3 = pulled("ghcr.io/acme/api", "3", d("3"), d("c"));
  const images = [
    image(d("1"), ["ghcr.io/acme/api:1"], [`ghcr.io/acme/api@${d("a")}`]),
    image(d("2"), ["ghcr.io/acme/api:2"], [`ghcr.io/acme/api@${d("b")}`]),
    image(d("3"), ["ghcr.io/acme/api:3"], [`ghcr.io/acme/api@${d("c")}`]),
  ];
  const kept = [
    manifest("bk_3", [{ image: "ghcr.io/acme/api:3", imageId: d("3"), digest: d("c") }]),
    manifest("bk_2", [{ image: "ghcr.io/acme/api:2", imageId: d("2"), digest: d("b") }]),
  ];

  it("removes what no kept manifest names, with the agent's own references, and keeps the current and previous bakes' images", () => {
    const plan = planCleanup(inputs({ pulled: [v1, v2, v3], images, kept }));
    expect(plan.remove).toEqual([expect.objectContaining({ imageId: d("1"), refs: ["ghcr.io/acme/api:1", `ghcr.io/acme/api@${d("a")}`], listed: ["ghcr.io/acme/api:1", `ghcr.io/acme/api@${d("a")}`], size: 10_000_000 })]);
    expect(plan.keep.map((k) => [k.imageId, k.reason])).toEqual([
      [d("2"), "named by bake bk_2"],
      [d("3"), "named by bake bk_3"],
    ]);
  });

  it("keeps an image a container uses, stopped or running", () => {
    const plan = planCleanup(inputs({ pulled: [v1], images, kept, containers: [{ id: "c1", imageId: d("1") }] }));
    expect(plan.remove).toEqual([]);
    expect(plan.keep).toEqual([expect.objectContaining({ imageId: d("1"), reason: "a container uses it" })]);
  });

  it("keeps an image pulled less than the minimum age ago", () => {
    const young = pulled("ghcr.io/acme/api", "1", d("1"), d("a"), 10 * 60_000);
    expect(planCleanup(inputs({ pulled: [young], images, kept })).keep).toEqual([expect.objectContaining({ reason: expect.stringMatching(/^pulled 600 s ago/) })]);
  });

  it("never touches an image the agent did not pull, and removes only its own references of one a person also tagged", () => {
    const byHand = image(d("9"), ["quay.io/acme/tool:1"], [`quay.io/acme/tool@${d("9")}`]);
    const shared = image(d("1"), ["ghcr.io/acme/api:1", "mine:latest"], [`ghcr.io/acme/api@${d("a")}`]);
    const plan = planCleanup(inputs({ pulled: [v1], images: [byHand, shared], kept: [] }));
    expect(plan.remove).toEqual([expect.objectContaining({ imageId: d("1"), refs: ["ghcr.io/acme/api:1", `ghcr.io/acme/api@${d("a")}`] })]);
    expect(plan.keep).toEqual([]);
  });

  it("keeps an image a bake in progress in another process needs, by tag or by digest", () => {
    const byTag = planCleanup(inputs({ pulled: [v1], images, running: [{ bakeId: "bk_cli", pid: 1, images: ["ghcr.io/acme/api:1"] }] }));
    expect(byTag.remove).toEqual([]);
    expect(byTag.keep).toEqual([expect.objectContaining({ imageId: d("1"), reason: "bake bk_cli in progress needs it" })]);
    const byDigest = planCleanup(inputs({ pulled: [v1], images, running: [{ bakeId: "bk_cli", pid: 1, images: [`ghcr.io/acme/api@${d("a")}`] }] }));
    expect(byDigest.remove).toEqual([]);
  });

  it("knows Docker Hub's short names as the agent's canonical ones", () => {
    const hub = pulled("docker.io/library/redis", "7", d("7"), d("e"));
    const plan = planCleanup(inputs({ pulled: [hub], images: [image(d("7"), ["redis:7"], [`redis@${d("e")}`])] }));
    expect(plan.remove[0]?.refs).toEqual(["redis:7", `redis@${d("e")}`]);
  });

  it("forgets entries of images Docker no longer has, or no longer holds under the agent's references", () => {
    const gone = pulled("ghcr.io/acme/gone", "1", d("5"), d("f"));
    const retagged = pulled("ghcr.io/acme/api", "1", d("6"), d("0"));
    const plan = planCleanup(inputs({ pulled: [gone, retagged], images: [image(d("6"), ["mine:1"], [])] }));
    expect(plan.forget).toEqual([gone, retagged]);
    expect(plan.remove).toEqual([]);
  });
});

describe("runCleanup", () => {
  it("deletes each reference through the Engine API, counts the bytes of images actually deleted, and carries on after a failure", async () => {
    const docker = new FakeDocker().has("ghcr.io/acme/api", d("a")).has("ghcr.io/acme/busy", d("b"));
    docker.containers.push({ id: "c", imageId: (await docker.inspectImage(`ghcr.io/acme/busy@${d("b")}`))!.id });
    const forgotten: string[] = [];
    const idOf = async (ref: string) => (await docker.inspectImage(ref))!.id;
    const plan = {
      remove: [
        { imageId: await idOf(`ghcr.io/acme/busy@${d("b")}`), refs: [`ghcr.io/acme/busy@${d("b")}`], listed: [`ghcr.io/acme/busy@${d("b")}`], size: 5, entries: [] },
        { imageId: await idOf(`ghcr.io/acme/api@${d("a")}`), refs: [`ghcr.io/acme/api@${d("a")}`], listed: [`ghcr.io/acme/api@${d("a")}`], size: 7, entries: [pulled("ghcr.io/acme/api", "1", "x", d("a"))] },
      ],
      keep: [],
      forget: [],
    };
    const out = await runCleanup(plan, { docker, running: async () => [], forget: async (e) => void forgotten.push(e.file) }, NOW, new AbortController().signal);
    expect(out.failures).toEqual([expect.objectContaining({ error: expect.stringContaining("container is using its referenced image") })]);
    expect(out.removed).toEqual([expect.objectContaining({ refs: [`ghcr.io/acme/api@${d("a")}`], bytes: 7 })]);
    expect(out.bytes).toBe(7);
    expect(forgotten).toEqual(["/state/images/x.json"]);
  });

  it("asks again before each removal and keeps what a bake started since the plan needs", async () => {
    const docker = new FakeDocker().has("ghcr.io/acme/api", d("a"));
    const id = (await docker.inspectImage(`ghcr.io/acme/api@${d("a")}`))!.id;
    const plan = { remove: [{ imageId: id, refs: [`ghcr.io/acme/api@${d("a")}`], listed: [`ghcr.io/acme/api@${d("a")}`], size: 7, entries: [] }], keep: [], forget: [] };
    const running = async () => [{ bakeId: "bk_cli", pid: 1, images: [`ghcr.io/acme/api@${d("a")}`] }];
    const out = await runCleanup(plan, { docker, running, forget: async () => undefined }, NOW, new AbortController().signal);
    expect(out.removed).toEqual([]);
    expect(out.kept).toEqual([expect.objectContaining({ reason: "bake bk_cli in progress needs it" })]);
    expect(await docker.inspectImage(`ghcr.io/acme/api@${d("a")}`)).toBeDefined();
  });

  it("counts a digest reference the engine removed with the repository's last tag as removed, not failed", async () => {
    const docker = new FakeDocker().has("ghcr.io/acme/api", d("a"), "1");
    const info = (await docker.inspectImage(`ghcr.io/acme/api@${d("a")}`))!;
    const plan = { remove: [{ imageId: info.id, refs: ["ghcr.io/acme/api:1", `ghcr.io/acme/api@${d("a")}`], listed: ["ghcr.io/acme/api:1", `ghcr.io/acme/api@${d("a")}`], size: 7, entries: [] }], keep: [], forget: [] };
    const out = await runCleanup(plan, { docker, running: async () => [], forget: async () => undefined }, NOW, new AbortController().signal);
    expect(out.failures).toEqual([]);
    expect(out.removed).toEqual([expect.objectContaining({ imageId: info.id, bytes: 7 })]);
    expect(docker.log.filter((l) => l.startsWith("remove "))).toEqual(["remove ghcr.io/acme/api:1", `remove ghcr.io/acme/api@${d("a")}`]);
  });

  it("asks again by every reference the image has, not only the agent's", async () => {
    const docker = new FakeDocker().has("ghcr.io/acme/api", d("a"));
    const id = (await docker.inspectImage(`ghcr.io/acme/api@${d("a")}`))!.id;
    const plan = { remove: [{ imageId: id, refs: [`ghcr.io/acme/api@${d("a")}`], listed: [`ghcr.io/acme/api@${d("a")}`, "mine:latest"], size: 7, entries: [] }], keep: [], forget: [] };
    const running = async () => [{ bakeId: "bk_cli", pid: 1, images: ["mine:latest"] }];
    const out = await runCleanup(plan, { docker, running, forget: async () => undefined }, NOW, new AbortController().signal);
    expect(out.removed).toEqual([]);
    expect(out.kept).toEqual([expect.objectContaining({ reason: "bake bk_cli in progress needs it" })]);
  });
});
