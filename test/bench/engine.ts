// What the benchmarks ask the engine directly: its limit (every image at once
// through the Engine API, auth prepared, no process, no AWS) and a clean slate.
import type Docker from "dockerode";
import { encodeRegistryAuth } from "../../agent/docker/auth-header.ts";

export interface LimitPull {
  /** `name:1` */
  reference: string;
  auth?: { username: string; password: string; serverAddress: string };
}

/** Pulls every image at once; resolves with the milliseconds it took. */
export async function pullAllAtOnce(docker: Docker, pulls: LimitPull[]): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    pulls.map(async (p) => {
      const opts = { fromImage: p.reference.replace(/:1$/, ""), tag: "1" };
      const s = (p.auth ? await docker.createImage({ base64: encodeRegistryAuth(p.auth) }, opts) : await docker.createImage(opts)) as NodeJS.ReadableStream;
      await new Promise<void>((resolve, reject) => docker.modem.followProgress(s, (e) => (e ? reject(e) : resolve())));
    }),
  );
  return performance.now() - t0;
}

/** Removes the images and what they leave dangling, so that the next run is cold. */
export async function removeImages(docker: Docker, references: string[]): Promise<void> {
  for (const r of references) await docker.getImage(r).remove({ force: true }).catch(() => undefined);
  await docker.pruneImages({ filters: { dangling: { false: true } } }).catch(() => undefined);
}
