// vitest global setup: one stack per project for the whole run, handed to its
// tests with `inject("stack")`; torn down afterwards, and the teardown checked.
// A project names its engine and loopback subnet in its `env`
// (SLOTHBOX_TEST_ENGINE, SLOTHBOX_TEST_SUBNET: vitest.config.ts), so the engine
// matrix's stacks run side by side.
import type { TestProject } from "vitest/node";
import { engineFromEnv } from "./dockerd.ts";
import { footprint, leftovers, stackSubnet, startStack, type StackInfo } from "./stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = { ...process.env, ...project.config.env };
  const stack = await startStack({ engine: engineFromEnv(env), subnet: stackSubnet(env) });
  project.provide("stack", stack.info);
  return async () => {
    const info = stack.info;
    await stack.stop();
    const left = await leftovers(footprint(info));
    if (left.length) throw new Error(`the test stack left things behind:\n${left.join("\n")}`);
  };
}
