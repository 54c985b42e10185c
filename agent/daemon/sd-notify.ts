// sd_notify for Type=notify units. Node cannot write to a unix datagram socket
// without a native addon, so the message goes through systemd's own
// `systemd-notify`, sent on behalf of this process (--pid; the unit sets
// NotifyAccess=all). Its environment holds only NOTIFY_SOCKET and PATH.
import { execFile } from "node:child_process";

export type Notify = (state: string) => Promise<void>;

export function createNotifier(env: Record<string, string | undefined>, onError: (err: Error) => void): Notify | undefined {
  const socket = env["NOTIFY_SOCKET"];
  if (!socket) return undefined;
  const send = (state: string) =>
    new Promise<void>((resolve) => {
      const done = (err: Error | null) => {
        if (err) onError(err);
        resolve();
      };
      try {
        execFile(
          "systemd-notify",
          [`--pid=${process.pid}`, ...state.split("\n")],
          { env: { NOTIFY_SOCKET: socket, PATH: env["PATH"] ?? "/usr/bin:/bin" }, timeout: 5000 },
          done,
        );
      } catch (err) {
        // Some failures throw rather than call back (E2BIG, ENOMEM, a NUL in an argument):
        // one lost message must not stop the ones after it (WATCHDOG=1, STOPPING=1).
        done(err as Error);
      }
    });
  // One message at a time, in order: each is its own process, and two started
  // together can arrive the other way round. systemd keeps the last STATUS= it
  // got, so "reconciling (start)" followed at once by "serving…" could otherwise
  // stay in `systemctl status` for good (seen on a loaded machine).
  let last = Promise.resolve();
  return (state) => (last = last.then(() => send(state)));
}

/** WATCHDOG_USEC → how often to ping: half the watchdog interval, as systemd advises. */
export function watchdogIntervalMs(env: Record<string, string | undefined>): number | undefined {
  const usec = Number(env["WATCHDOG_USEC"]);
  const pid = env["WATCHDOG_PID"];
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (pid !== undefined && Number(pid) !== process.pid) return undefined;
  return Math.max(500, Math.floor(usec / 1000 / 2));
}
