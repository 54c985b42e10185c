// vitest global setup: one stack for the whole run, handed to tests with
// `inject("stack")`; torn down afterwards, and the teardown checked.
import type { TestProject } from "vitest/node";
import { footprint, leftovers, startStack, type Stack, type StackInfo } from "./stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

let stack: Stack | undefined;

export async function setup(project: TestProject): Promise<void> {
  stack = await startStack();
  project.provide("stack", stack.info);
}

export async function teardown(): Promise<void> {
  if (!stack) return;
  const info = stack.info;
  await stack.stop();
  const left = await leftovers(footprint(info));
  if (left.length) throw new Error(`the test stack left things behind:\n${left.join("\n")}`);
}
