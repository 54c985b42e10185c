// An address that never answers, as a firewall that drops packets or a
// private subnet without a route looks from the box: a listening socket whose
// accept queue is full and never drained, so that the kernel drops every
// further SYN and a client's connect hangs until its own timeout. Node treats a
// backlog of 0 as "the default" (511), so the socket listens with a backlog of
// 1, in a child process whose event loop is blocked for good (it never
// accepts), and the queue is filled with connections of our own until one is
// no longer taken.
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";

export interface BlackHole {
  url: string;
  host: string;
  port: number;
  stop(): Promise<void>;
}

const LISTENER = `
const fs = require("node:fs");
const s = require("node:net").createServer();
s.listen({ port: 0, host: process.argv[1], backlog: 1 }, () => {
  fs.writeSync(1, s.address().port + "\\n");
  // Never return to the event loop: nothing is ever accepted. Ten minutes at most,
  // so that a test runner that died without stopping it leaves nothing behind.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600_000);
  process.exit(0);
});
`;

function connects(host: string, port: number, ms: number): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(undefined);
    }, ms);
    s.once("connect", () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once("error", () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

export async function startBlackHole(host = "127.0.0.1"): Promise<BlackHole> {
  const child: ChildProcess = spawn(process.execPath, ["-e", LISTENER, host], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d: Buffer) => resolve(Number(String(d).trim())));
    child.once("exit", (code) => reject(new Error(`black-hole listener exited ${code}`)));
  });
  const held: net.Socket[] = [];
  const stop = async () => {
    for (const s of held) s.destroy();
    child.kill("SIGKILL");
    await exited;
  };
  // The queue takes backlog + 1 connections; a dozen is far more than it can hold.
  for (let i = 0; i < 12; i++) {
    const s = await connects(host, port, 500);
    if (!s) return { url: `http://${host}:${port}`, host, port, stop };
    held.push(s);
  }
  await stop();
  throw new Error(`the accept queue of ${host}:${port} never filled: no black hole`);
}
