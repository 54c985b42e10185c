// What a bake asks the engine for, and when: a unix socket of the bench's own in
// front of dockerd's that notes each request line, each answer's status and each
// chunked answer's end with its time (BENCH_API_TRACE=1 in the warm API bake,
// {"trace": true} in cpu-ab.ts).
import net from "node:net";
import path from "node:path";

export interface EngineTrace {
  dockerHost: string;
  lines: { t: number; line: string }[];
  /** The lines from the `from`-th on, one per row, each with its time from `t0`. */
  since: (from: number, t0: number) => string;
  close: () => void;
}

/** Engine API requests through a socket in front of dockerd's, each with its time and the answer's status and end. */
export function tracingSocket(target: string, dir: string): EngineTrace {
  const sock = path.join(dir, "engine-trace.sock");
  const lines: { t: number; line: string }[] = [];
  let seq = 0;
  const server = net.createServer((c) => {
    const id = seq++;
    const up = net.connect(target);
    c.on("data", (b: Buffer) => {
      const m = /^(GET|POST|HEAD|DELETE|PUT) (\S+)/.exec(b.toString("latin1", 0, 300));
      if (m) lines.push({ t: performance.now(), line: `#${id} ${m[1]} ${m[2]!.slice(0, 100)}` });
      up.write(b);
    });
    up.on("data", (b: Buffer) => {
      const head = b.toString("latin1", 0, 20);
      if (head.startsWith("HTTP/1.1")) lines.push({ t: performance.now(), line: `#${id}   ← ${head.slice(9, 12)}` });
      if (b.toString("latin1", Math.max(0, b.length - 7)).endsWith("0\r\n\r\n")) lines.push({ t: performance.now(), line: `#${id}   ← end` });
      c.write(b);
    });
    c.on("close", () => up.destroy());
    up.on("close", () => c.destroy());
    c.on("error", () => undefined);
    up.on("error", () => undefined);
  });
  server.listen(sock);
  return {
    dockerHost: `unix://${sock}`,
    lines,
    since: (from, t0) => lines.slice(from).map((l) => `${(l.t - t0).toFixed(1).padStart(8)} ms  ${l.line}`).join("\n"),
    close: () => server.close(),
  };
}
