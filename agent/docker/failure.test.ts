import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../errors/codes.ts";
import { Scrubber } from "../errors/scrub.ts";
import { dockerFailure } from "./failure.ts";
import { DockerHttpError } from "./port.ts";
import { PullStreamError } from "./pull-stream.ts";

describe("dockerFailure", () => {
  // Lines dockerd 20.10 and 28.5's containerd store printed (errors/engine-texts.json).
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
});
