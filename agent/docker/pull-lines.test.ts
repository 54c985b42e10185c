import { describe, expect, it } from "vitest";
import { LineSplitter, MAX_LINE_BYTES, PullLines } from "./pull-lines.ts";

const layer = (status: string, id: string, detail = "{}") => `{"status":"${status}","progressDetail":${detail},"id":"${id}"}`;

describe("LineSplitter", () => {
  it("gives each line once it is complete, whatever the chunks", () => {
    const s = new LineSplitter();
    expect(s.push('{"a"')).toEqual([]);
    expect(s.push(':1}\n{"b":2}\n{"c"')).toEqual(['{"a":1}', '{"b":2}']);
    expect(s.end()).toBe('{"c"');
  });

  it("drops a line too long to be Docker's progress, up to its newline, and keeps the next", () => {
    const s = new LineSplitter();
    expect(s.push("x".repeat(MAX_LINE_BYTES + 1))).toEqual([]);
    expect(s.push("still the long line\nnext\n")).toEqual(["next"]);
    s.push("y".repeat(MAX_LINE_BYTES + 1));
    expect(s.end()).toBeUndefined();
  });
});

describe("PullLines", () => {
  it("reads Docker's error line as the end of the pull, in Docker's words", () => {
    const p = new PullLines();
    expect(p.read('{"errorDetail":{"message":"toomanyrequests: rate limit "},"error":"x"}')).toEqual({ kind: "failed", message: "toomanyrequests: rate limit" });
    expect(p.read('{"error":"manifest unknown"}')).toEqual({ kind: "failed", message: "manifest unknown" });
  });

  it("reads blank lines, lines that are not JSON, and a layer's repeated line as nothing", () => {
    const p = new PullLines();
    expect(p.read("  ")).toEqual({ kind: "none" });
    expect(p.read("not json")).toEqual({ kind: "none" });
    expect(p.read("null")).toEqual({ kind: "none" });
    const stalled = layer("Downloading", "aaaaaaaaaaaa", '{"current":1,"total":4}');
    expect(p.read(stalled)).toMatchObject({ kind: "layer" });
    expect(p.read(stalled)).toEqual({ kind: "none" });
  });

  it("reads a line of the whole pull as activity without progress", () => {
    expect(new PullLines().read('{"status":"Pulling from acme/api","id":"1"}')).toEqual({ kind: "status" });
  });

  it("tells when every layer still to come waits for a download slot, and when that ends", () => {
    const p = new PullLines();
    expect(p.read(layer("Already exists", "000000000000"))).not.toHaveProperty("queued");
    expect(p.read(layer("Waiting", "aaaaaaaaaaaa"))).toMatchObject({ kind: "layer", queued: true });
    expect(p.read(layer("Waiting", "bbbbbbbbbbbb"))).not.toHaveProperty("queued");
    expect(p.read(layer("Downloading", "aaaaaaaaaaaa", '{"current":1,"total":4}'))).toMatchObject({ kind: "layer", queued: false });
  });

  it("sums bytes across layers and counts layers sized, downloaded and unpacked", () => {
    const p = new PullLines();
    p.read(layer("Downloading", "aaaaaaaaaaaa", '{"current":10,"total":100}'));
    p.read(layer("Pull complete", "bbbbbbbbbbbb"));
    expect(p.read(layer("Download complete", "cccccccccccc"))).toEqual({
      kind: "layer",
      progress: { current: 10, total: 100, layers: 3, layersSized: 3, layersDownloaded: 2, layersDone: 1 },
    });
  });

  it("ends finished with the digest the engine says it pulled, or unfinished with the last status", () => {
    const done = new PullLines();
    done.read(`{"status":"Digest: sha256:${"b".repeat(64)}"}`);
    done.read('{"status":"Status: Downloaded newer image for ghcr.io/acme/api:1"}');
    expect(done.end()).toEqual({ kind: "finished", digest: `sha256:${"b".repeat(64)}` });
    expect(new PullLines().end()).toEqual({ kind: "unfinished", message: "pull stream ended before the pull finished (last status: none)" });
    const cut = new PullLines();
    cut.read(layer("Downloading", "aaaaaaaaaaaa", '{"current":1,"total":9}'));
    expect(cut.end()).toMatchObject({ kind: "unfinished", message: expect.stringContaining("last status: Downloading") });
  });
});
