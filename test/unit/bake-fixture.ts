// What a unit test of runBake starts from: fake Docker and AWS (GHCR's token in SSM),
// a fake clock, a resolver over them, and the events and steps the bake tells.
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { BakeConfig, BakeDeps } from "../../agent/bake/run.ts";
import type { BakeStep } from "../../agent/bake/types.ts";
import type { CredentialCache } from "../../agent/credentials/cache.ts";
import { CredentialResolver } from "../../agent/credentials/resolve.ts";
import { Scrubber } from "../../agent/errors/scrub.ts";
import type { AgentEvent } from "../../agent/report/events.ts";
import { FakeAws, FakeDocker, fakeClock } from "./fakes.ts";

export const PREFIX = "/slothbox/registry-credentials/";

/** `dirs` collects the state dir, for the test file's afterEach to remove. */
export function bakeFixture(dirs: string[], cache?: CredentialCache) {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "sbx-bake-"));
  dirs.push(stateDir);
  const docker = new FakeDocker();
  const aws = new FakeAws();
  aws.parameters.set(`${PREFIX}rc_gh`, { type: "SecureString", value: "ghp_secret" });
  const clock = fakeClock();
  const scrubber = new Scrubber();
  const events: AgentEvent[] = [];
  const steps: BakeStep[] = [];
  const resolver = new CredentialResolver({ aws: () => aws, scrubber, clock, ssmParameterPrefix: PREFIX, random: () => 0.5, ...(cache ? { cache } : {}) });
  const config = (over: Partial<BakeConfig> = {}): BakeConfig => ({ stateDir, pullConcurrency: 3, pullRetries: 0, pullTimeoutSeconds: 60, pullInactivityTimeoutSeconds: 30, ...over });
  const deps = (over: Partial<BakeConfig> = {}, extra: Partial<BakeDeps> = {}): BakeDeps => ({
    config: config(over),
    docker,
    resolver,
    clock,
    random: () => 0.5,
    scrubber,
    emit: async (e) => void events.push(e),
    onStep: (st) => steps.push(st),
    ...extra,
  });
  return { stateDir, docker, aws, clock, scrubber, events, steps, deps };
}
