// The inspects around a pull (is a pinned image present; what did the pull leave)
// talk to the same socket as the pull: a daemon that restarts or stops answering
// there fails them in SPEC §5's words, never as the agent's bug.
import { describe, expect, it } from "vitest";
import { AgentError } from "../errors/agent-error.ts";
import { Scrubber } from "../errors/scrub.ts";
import { parseReference } from "../spec/reference.ts";
import { FakeDocker, fakeClock, hangUntil } from "../../test/unit/fakes.ts";
import { DockerHttpError } from "./port.ts";
import { presentPinned, pullImage } from "./pull.ts";

const D = "sha256:" + "d".repeat(64);
const pinned = parseReference(`ghcr.io/acme/api@${D}`);
const tagged = parseReference("ghcr.io/acme/api:1");

/** What a Unix socket says when dockerd is gone (restarting) or drops the connection. */
const socketError = (code: string) => Object.assign(new Error(`connect ${code} /run/docker.sock`), { code });

const deps = (docker: FakeDocker) => ({ docker, clock: fakeClock(), random: () => 0.5, scrubber: new Scrubber(), inactivityTimeoutMs: 30_000, totalTimeoutMs: 60_000, retries: 0 });

async function rejection(p: Promise<unknown>): Promise<AgentError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  return err as AgentError;
}

describe("presentPinned", () => {
  it.each(["ECONNREFUSED", "ENOENT", "ECONNRESET", "EPIPE"])("reports a daemon that is gone mid-bake (%s) as docker_unavailable", async (code) => {
    const docker = new FakeDocker();
    docker.inspectPlan = async () => {
      throw socketError(code);
    };
    const e = await rejection(presentPinned(pinned, { docker, scrubber: new Scrubber() }, new AbortController().signal));
    expect(e.code).toBe("docker_unavailable");
    expect(e.retryable).toBe(true);
    expect(e.message).toMatch(new RegExp(`the Docker daemon did not answer: .*${code}`));
  });

  it("reports the daemon's own error answer to the inspect in Docker's words, not as the agent's bug", async () => {
    const docker = new FakeDocker();
    docker.inspectPlan = async () => {
      throw new DockerHttpError(500, "Error response from daemon: daemon is shutting down");
    };
    const e = await rejection(presentPinned(pinned, { docker, scrubber: new Scrubber() }, new AbortController().signal));
    expect(e.code).toBe("docker_unavailable");
    expect(e.message).toBe("Error response from daemon: daemon is shutting down");
  });

  it("reports a socket that stops answering the inspect as docker_unavailable once the bound has passed", async () => {
    const docker = new FakeDocker();
    docker.inspectPlan = (_ref, signal) => hangUntil(signal);
    const e = await rejection(presentPinned(pinned, { docker, scrubber: new Scrubber(), inspectTimeoutMs: 50 }, new AbortController().signal));
    expect(e.code).toBe("docker_unavailable");
    expect(e.message).toMatch(/did not answer the inspect of ghcr\.io\/acme\/api@sha256:d+ within 0\.05 s/);
  });

  it("leaves a bake stopped during the inspect to the bake: the signal's reason, not a Docker failure", async () => {
    const docker = new FakeDocker();
    docker.inspectPlan = (_ref, signal) => hangUntil(signal);
    const stop = new AbortController();
    const pending = presentPinned(pinned, { docker, scrubber: new Scrubber() }, stop.signal).catch((e: unknown) => e);
    stop.abort(new Error("SIGTERM"));
    expect(await pending).toEqual(new Error("SIGTERM"));
  });

  it("still says a pinned image Docker lacks is absent, and one it has is present", async () => {
    const docker = new FakeDocker();
    expect(await presentPinned(pinned, { docker, scrubber: new Scrubber() }, new AbortController().signal)).toBeUndefined();
    docker.has(pinned.name, D);
    expect(await presentPinned(pinned, { docker, scrubber: new Scrubber() }, new AbortController().signal)).toMatchObject({ digest: D });
  });
});

describe("the inspect after a pull", () => {
  it("reports a daemon restarted between the pull and its inspect as docker_unavailable", async () => {
    const docker = new FakeDocker();
    docker.inspectPlan = async () => {
      throw socketError("ECONNREFUSED");
    };
    const e = await rejection(pullImage(tagged, undefined, deps(docker), new AbortController().signal));
    expect(e.code).toBe("docker_unavailable");
    expect(docker.pulls()).toEqual(["ghcr.io/acme/api:1"]);
  });
});
