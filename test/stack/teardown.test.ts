// Proves that stopping the stack's parts leaves nothing behind: a second,
// private dockerd and registry are started, used, stopped and then looked for.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import Docker from "dockerode";
import { expect, inject, it } from "vitest";
import { startDockerd } from "./dockerd.ts";
import { buildRegistryImage, startRegistry } from "./registry.ts";
import { leftovers, testcontainersEnv } from "./stack.ts";

it("leaves no process, mount, listener, container or directory behind", async () => {
  const dir = `/tmp/sbx-td-${randomBytes(3).toString("hex")}`;
  const address = `127.${inject("stack").subnet}.0.99`;
  const dockerd = await startDockerd({ dir, hosts: { "teardown.registry.test": address } });
  try {
    testcontainersEnv(dockerd.dockerHost);
    await buildRegistryImage(dir);
    const registry = await startRegistry({ name: "teardown.registry.test", address });
    const docker = new Docker({ socketPath: dockerd.socketPath });
    expect((await docker.listContainers()).length).toBe(1);
    expect((await fetch(`http://${address}/v2/`)).status).toBe(200);
    const before = await leftovers({ dir, pids: [dockerd.pid], addresses: [address] });
    expect(before.length).toBeGreaterThan(2);

    await registry.container.stop({ remove: true });
    expect((await docker.listContainers({ all: true })).length).toBe(0);
  } finally {
    // Stopped whatever happened above: a failed check must not leave a dockerd running.
    await dockerd.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  expect(await leftovers({ dir, pids: [dockerd.pid], addresses: [address] })).toEqual([]);
});
