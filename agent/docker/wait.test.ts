import { describe, expect, it } from "vitest";
import type { Clock } from "../clock.ts";
import { AgentError } from "../errors/agent-error.ts";
import type { DockerPort } from "./port.ts";
import { DOCKER_WAIT_MS, waitForDocker } from "./wait.ts";

function fakeClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

function port(ping: () => Promise<void>): DockerPort {
  const no = () => Promise.reject(new Error("unused"));
  return { ping, dataRoot: no, registryConfig: no, login: no, pull: no, inspectImage: no, tagImage: no, distributionInspect: no, listImages: no, listContainers: no, removeImage: no };
}

describe("waitForDocker", () => {
  it("gives up with docker_unavailable after 30 s of no answer", async () => {
    const clock = fakeClock();
    let pings = 0;
    const refused = Object.assign(new Error("connect ENOENT /var/run/docker.sock"), { code: "ENOENT" });
    const err = await waitForDocker(port(() => (pings++, Promise.reject(refused))), clock, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe("docker_unavailable");
    expect((err as AgentError).message).toContain("ENOENT");
    expect(clock.t).toBeGreaterThanOrEqual(DOCKER_WAIT_MS);
    expect(pings).toBeGreaterThan(10);
  });

  it("returns as soon as the daemon answers", async () => {
    const clock = fakeClock();
    let n = 0;
    await waitForDocker(port(() => (++n < 3 ? Promise.reject(new Error("no")) : Promise.resolve())), clock, new AbortController().signal);
    expect(n).toBe(3);
    expect(clock.t).toBe(1000);
  });
});
