// `slothbox-agent daemon`: not built yet (issue 4).
import type { Io } from "../cli/bake-command.ts";
import type { Runtime } from "../runtime.ts";

export async function runDaemon(_rt: Runtime, io: Io): Promise<number> {
  io.stderr("error: the daemon is not implemented in this version");
  return 2;
}
