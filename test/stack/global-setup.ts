// vitest global setup, once for the run: one stack — the registries, and a
// dockerd for each engine a project names in its `env` (SLOTHBOX_TEST_ENGINE:
// vitest.config.ts) — handed to each project's tests with `inject("stack")` as
// seen through its engine; torn down afterwards, and the teardown checked.
import type { TestProject } from "vitest/node";
import { engineFromEnv, engineName, type Engine } from "./dockerd.ts";
import { leftovers, startStack, type StackInfo } from "./stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

export default async function setup(root: TestProject): Promise<() => Promise<void>> {
  const projects = root.vitest.projects.filter((p) => p.config.env?.["SLOTHBOX_TEST_ENGINE"] !== undefined);
  const engineOf = (p: TestProject) => engineFromEnv({ ...process.env, ...p.config.env });
  const engines = [...new Map(projects.map((p) => [engineName(engineOf(p)), engineOf(p)] as [string, Engine])).values()];
  if (engines.length === 0) return async () => undefined;
  const stack = await startStack({ engines });
  for (const p of projects) p.provide("stack", stack.infoFor(engineOf(p)));
  return async () => {
    const footprint = stack.footprint();
    await stack.stop();
    const left = await leftovers(footprint);
    if (left.length) throw new Error(`the test stack left things behind:\n${left.join("\n")}`);
  };
}
