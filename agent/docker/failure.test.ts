import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../errors/codes.ts";
import { Scrubber } from "../errors/scrub.ts";
import { FakeDocker } from "../../test/unit/fakes.ts";
import { dockerFailure, MEDIA_TYPE_HINT, PLATFORM_HINT, withRegistryWords } from "./failure.ts";
import { DockerHttpError } from "./port.ts";
import { PullStreamError } from "./pull-stream.ts";

describe("dockerFailure", () => {
  it("reports a layer the engine could not unpack as image_unsupported in the engine's words, with what to do, not as the agent's bug", async () => {
    // Docker 20.10 reading a zstd layer as a plain tar.
    const line = "failed to register layer: ApplyLayer exit status 1 stdout:  stderr: archive/tar: invalid tar header";
    const e = dockerFailure(new PullStreamError(line), { authenticated: false }, new Scrubber());
    const hint = ERROR_CODES.image_unsupported.hint;
    expect(e.toBody()).toEqual({ code: "image_unsupported", message: line, hint, retryable: false });
    expect(hint).toMatch(/zstd/);
    expect(hint).toMatch(/Docker before 23\.0/);
    expect(hint).toMatch(/gzip layers.*or upgrade Docker/);
    // Nothing to ask the registry: it served the layer.
    const docker = new FakeDocker();
    expect(await withRegistryWords(e, "quay.io/acme/zstd:1", undefined, { docker, scrubber: new Scrubber() }, new AbortController().signal)).toBe(e);
    expect(docker.log.filter((l) => l.startsWith("distribution"))).toEqual([]);
  });

  it("reports content that is no image Docker can run (a Helm chart) as image_unsupported, with its own hint", async () => {
    const line = "unsupported media type application/vnd.cncf.helm.config.v1+json";
    const e = dockerFailure(new PullStreamError(line), { authenticated: true }, new Scrubber());
    expect(e.toBody()).toEqual({ code: "image_unsupported", message: line, hint: MEDIA_TYPE_HINT, retryable: false });
    expect(MEDIA_TYPE_HINT).toMatch(/Helm chart/);
    const docker = new FakeDocker();
    expect(await withRegistryWords(e, "quay.io/acme/chart:0.1.0", undefined, { docker, scrubber: new Scrubber() }, new AbortController().signal)).toBe(e);
  });

  it("keeps a full disk while unpacking disk_full", () => {
    const line = "failed to register layer: Error processing tar file(exit status 1): write /usr/lib/x: no space left on device";
    const e = dockerFailure(new PullStreamError(line), { authenticated: true }, new Scrubber());
    expect(e.code).toBe("disk_full");
    expect(e.hint).not.toBe(ERROR_CODES.image_unsupported.hint);
  });

  it("reports an image without this platform's manifest as not found for this platform, not as a typo or a private image", async () => {
    for (const [err, line] of [
      [new DockerHttpError(404, "no matching manifest for linux/amd64 in the manifest list entries"), "no matching manifest for linux/amd64 in the manifest list entries"],
      [new PullStreamError("no match for platform in manifest: not found"), "no match for platform in manifest: not found"],
    ] as const) {
      const e = dockerFailure(err, { authenticated: false }, new Scrubber());
      expect(e.toBody()).toEqual({ code: "image_not_found", message: line, hint: PLATFORM_HINT, retryable: false });
      const docker = new FakeDocker();
      expect(await withRegistryWords(e, "quay.io/acme/arm:1", undefined, { docker, scrubber: new Scrubber() }, new AbortController().signal)).toBe(e);
      expect(docker.log.filter((l) => l.startsWith("distribution"))).toEqual([]);
    }
    expect(PLATFORM_HINT).toMatch(/--platform linux\/amd64,linux\/arm64/);
  });

  // Lines dockerd 20.10 and 28.5's containerd store printed (test/fixtures/engine-texts.json).
  it.each([
    ["write /tmp/sbx-df/data/tmp/GetImageBlob1662560210: no space left on device", "disk_full"],
    [
      "failed to copy: failed to send write: write /tmp/sbx-df/data/containerd/daemon/io.containerd.content.v1.content/ingest/1eb/data: no space left on device",
      "disk_full",
    ],
    ["manifest verification failed for digest sha256:90fdf85f8e002964dd474dcdcb497fa6a3d73b58eae014aa350f435a4b868a45", "digest_mismatch"],
    ["filesystem layer verification failed for digest sha256:0928c415c340a66c102de05b3f1c2ebe1c0a586d4e5353b7acee549bb90bc3eb", "digest_mismatch"],
    [
      'failed commit on ref "manifest-sha256:890d": commit failed: "manifest-sha256:890d" failed size validation: 588 != 587: failed precondition',
      "digest_mismatch",
    ],
  ] as const)("reports the engine's own finding with Docker's line and no registry words: %s", (line, code) => {
    const e = dockerFailure(new PullStreamError(line), { authenticated: true }, new Scrubber());
    expect(e.toBody()).toEqual({ code, message: line, hint: ERROR_CODES[code].hint, retryable: false });
  });

  it("keeps the registry's words where Docker's line has them", () => {
    const e = dockerFailure(new DockerHttpError(500, 'Head "http://ghcr.io/v2/acme/api/manifests/1": denied: denied'), { authenticated: true }, new Scrubber());
    expect(e.toBody()).toMatchObject({ code: "image_access_denied", registryMessage: "denied: denied" });
  });

  it("carries what it needs to ask the registry again on the error itself, and keeps its attempts", async () => {
    // 26.1's containerd store keeps only the status of a 403 (test/fixtures/engine-texts.json).
    const line = 'failed to resolve reference "ghcr.io/acme/api:1": unexpected status from HEAD request to https://ghcr.io/v2/acme/api/manifests/1: 403 Forbidden';
    const e = dockerFailure(new DockerHttpError(500, line), { authenticated: true }, new Scrubber());
    expect(e).toMatchObject({ code: "image_access_denied", registryMessage: undefined, context: { authenticated: true, statusCode: 500 } });
    e.attempts = 3;
    const docker = new FakeDocker();
    docker.distribution.set("ghcr.io/acme/api:1", new DockerHttpError(403, 'Head "https://ghcr.io/v2/acme/api/manifests/1": denied: requested access to the resource is denied'));
    const asked = await withRegistryWords(e, "ghcr.io/acme/api:1", undefined, { docker, scrubber: new Scrubber() }, new AbortController().signal);
    expect(asked.toBody()).toMatchObject({ code: "image_access_denied", message: line, registryMessage: "denied: requested access to the resource is denied", attempts: 3 });
    expect(docker.log).toContain("distribution ghcr.io/acme/api:1");
  });

  // docs/reference.md §5: an answer no rule knows gets the closest code, never internal (a bug).
  it("reports a pull's line no rule knows as registry_unreachable, in Docker's words", () => {
    const e = dockerFailure(new PullStreamError("something no registry ever said"), { authenticated: true }, new Scrubber());
    expect(e.toBody()).toEqual({ code: "registry_unreachable", message: "something no registry ever said", hint: ERROR_CODES.registry_unreachable.hint, retryable: true, registryMessage: "something no registry ever said" });
  });

  it("reports a login's answer no rule knows as registry_auth_failed, in Docker's words", () => {
    const e = dockerFailure(new DockerHttpError(400, "something no registry ever said"), { authenticated: true, login: true }, new Scrubber());
    expect(e.toBody()).toMatchObject({ code: "registry_auth_failed", message: "something no registry ever said" });
  });
});
