// Unit tests; integration tests against the local stack on Debian 12's dockerd
// 20.10 (every file); and the end-to-end suites of the bake, the registries, the
// daemon, image cleanup, the error codes the engine reports, the disk reserve,
// live progress and the secret search again on each
// newer engine a box may run — Docker 26.1 and 28.5,
// each with the classic and the containerd image store. One stack serves all:
// the registries once, a dockerd per engine (test/stack/global-setup.ts).
import { defineConfig } from "vitest/config";

const ENGINES = ["26.1", "26.1-containerd", "28.5", "28.5-containerd"];
const E2E_ON_EVERY_ENGINE = [
  "test/e2e/bake.test.ts",
  "test/e2e/registries.test.ts",
  "test/e2e/daemon.test.ts",
  "test/e2e/cleanup.test.ts",
  "test/e2e/images.test.ts",
  "test/e2e/codes.test.ts",
  "test/e2e/disk.test.ts",
  "test/e2e/progress.test.ts",
  "test/e2e/secrets.test.ts",
  "test/e2e/signatures-bake.test.ts",
  "test/e2e/signatures.test.ts",
];

const stackProject = (name: string, include: string[], engine: string) => ({
  test: { name, include, env: { SLOTHBOX_TEST_ENGINE: engine }, testTimeout: 120_000, hookTimeout: 600_000, pool: "forks" as const },
});

export default defineConfig({
  test: {
    // The tests wait on dockerd, registries and processes more than on the two CPUs.
    maxWorkers: 3,
    globalSetup: ["test/stack/global-setup.ts"],
    hookTimeout: 600_000,
    projects: [
      { test: { name: "unit", include: ["agent/**/*.test.ts"] } },
      stackProject("integration", ["test/**/*.test.ts"], "20.10"),
      ...ENGINES.map((engine) => stackProject(`engine ${engine}`, E2E_ON_EVERY_ENGINE, engine)),
    ],
  },
});
