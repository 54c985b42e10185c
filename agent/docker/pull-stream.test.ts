import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { consumePullStream, PullStreamError } from "./pull-stream.ts";

function feed(lines: string[], end = true): PassThrough {
  const s = new PassThrough();
  // Split across chunk boundaries on purpose: lines arrive in pieces.
  const text = lines.join("\n") + "\n";
  for (let i = 0; i < text.length; i += 7) s.write(text.slice(i, i + 7));
  if (end) s.end();
  return s;
}

describe("consumePullStream", () => {
  it("resolves on a complete pull and reports progress across layers", async () => {
    const seen: number[] = [];
    const r = await consumePullStream(
      feed([
        '{"status":"Pulling from acme/api","id":"1"}',
        '{"status":"Pulling fs layer","progressDetail":{},"id":"aaaaaaaaaaaa"}',
        '{"status":"Downloading","progressDetail":{"current":50,"total":100},"id":"aaaaaaaaaaaa"}',
        '{"status":"Pull complete","progressDetail":{},"id":"aaaaaaaaaaaa"}',
        '{"status":"Digest: sha256:' + "a".repeat(64) + '"}',
        '{"status":"Status: Downloaded newer image for ghcr.io/acme/api:1"}',
      ]),
      { onProgress: (p) => seen.push(p.current) },
    );
    expect(r).toEqual({ digest: "sha256:" + "a".repeat(64) });
    expect(seen).toContain(50);
    expect(seen.at(-1)).toBe(100);
  });

  it("rejects with Docker's words on the first errorDetail line, even inside an HTTP 200 stream", async () => {
    const err = await consumePullStream(
      feed([
        '{"status":"Pulling from library/redis","id":"7"}',
        '{"errorDetail":{"message":"toomanyrequests: You have reached your pull rate limit."},"error":"toomanyrequests: You have reached your pull rate limit."}',
        '{"status":"Status: Downloaded newer image for redis:7"}',
      ]),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PullStreamError);
    expect((err as Error).message).toBe("toomanyrequests: You have reached your pull rate limit.");
  });

  it("rejects when the stream ends before the pull finished", async () => {
    await expect(consumePullStream(feed(['{"status":"Downloading","progressDetail":{"current":1,"total":9},"id":"aaaaaaaaaaaa"}']))).rejects.toThrow(
      /ended before the pull finished/,
    );
  });

  it("rejects on a stream error", async () => {
    const s = feed(['{"status":"Pulling fs layer","id":"aaaaaaaaaaaa"}'], false);
    const p = consumePullStream(s);
    s.destroy(new Error("socket hang up"));
    await expect(p).rejects.toThrow(/socket hang up/);
  });

  it("drops an absurdly long line instead of buffering it", async () => {
    const s = new PassThrough();
    const p = consumePullStream(s);
    s.write("x".repeat(3 << 20));
    s.write('\n{"status":"Status: Image is up to date for x"}\n');
    s.end();
    await expect(p).resolves.toEqual({});
  });

  it("counts progress, not bytes, as activity: the containerd store repeats a stalled layer's line", async () => {
    let activity = 0;
    const stalled = '{"status":"Downloading","progressDetail":{"current":1048576,"total":4194304},"progress":"1 MB/4 MB","id":"aaaaaaaaaaaa"}';
    const s = feed(['{"status":"Pulling fs layer","progressDetail":{},"id":"aaaaaaaaaaaa"}', ...Array.from({ length: 20 }, () => stalled)], false);
    void consumePullStream(s, { onActivity: () => activity++ }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    expect(activity).toBe(2);
    s.destroy();
  });

  it("counts the layers whose size is known: sized by a Downloading line, or already downloaded or present", async () => {
    const seen: { layers: number; layersSized: number; total: number }[] = [];
    await consumePullStream(
      feed([
        '{"status":"Pulling from acme/big","id":"1"}',
        '{"status":"Already exists","progressDetail":{},"id":"000000000000"}',
        '{"status":"Pulling fs layer","progressDetail":{},"id":"aaaaaaaaaaaa"}',
        '{"status":"Pulling fs layer","progressDetail":{},"id":"bbbbbbbbbbbb"}',
        '{"status":"Pulling fs layer","progressDetail":{},"id":"cccccccccccc"}',
        '{"status":"Downloading","progressDetail":{"current":10,"total":100},"id":"aaaaaaaaaaaa"}',
        '{"status":"Download complete","progressDetail":{},"id":"bbbbbbbbbbbb"}',
        '{"status":"Downloading","progressDetail":{"current":10,"total":200},"id":"cccccccccccc"}',
        '{"status":"Digest: sha256:' + "a".repeat(64) + '"}',
        '{"status":"Status: Downloaded newer image for quay.io/acme/big:1"}',
      ]),
      { onProgress: (p) => seen.push(p) },
    );
    expect(seen.map((p) => [p.layers, p.layersSized, p.total])).toEqual([
      [1, 1, 0],
      [2, 1, 0],
      [3, 1, 0],
      [4, 1, 0],
      [4, 2, 100],
      [4, 3, 100],
      [4, 4, 300],
    ]);
  });

  it("follows layers where the engine hides byte counts (containerd store), downloaded and unpacked", async () => {
    const seen: { layersDownloaded: number; layersDone: number; total: number }[] = [];
    await consumePullStream(
      feed([
        '{"status":"Pulling from acme/api","id":"1"}',
        '{"status":"Pulling fs layer","progressDetail":{},"id":"aaaaaaaaaaaa"}',
        '{"status":"Pulling fs layer","progressDetail":{},"id":"bbbbbbbbbbbb"}',
        '{"status":"Download complete","progressDetail":{"hidecounts":true},"id":"aaaaaaaaaaaa"}',
        '{"status":"Extracting","progressDetail":{"current":1,"units":"s"},"progress":"1 s","id":"aaaaaaaaaaaa"}',
        '{"status":"Pull complete","progressDetail":{"hidecounts":true},"id":"aaaaaaaaaaaa"}',
        '{"status":"Download complete","progressDetail":{"hidecounts":true},"id":"bbbbbbbbbbbb"}',
        '{"status":"Digest: sha256:' + "a".repeat(64) + '"}',
        '{"status":"Status: Downloaded newer image for ghcr.io/acme/api:1"}',
      ]),
      { onProgress: (p) => seen.push(p) },
    );
    expect(seen.at(-1)).toMatchObject({ layers: 2, layersDownloaded: 2, layersDone: 1, total: 0 });
  });
});
