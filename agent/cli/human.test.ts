import { describe, expect, it } from "vitest";
import { progressText } from "./human.ts";

describe("progressText", () => {
  it("shows bytes and layers where the engine counts bytes", () => {
    expect(progressText({ current: 2_100_000, total: 8_000_000, layers: 3, layersDownloaded: 1, layersDone: 0 })).toBe("2.1 MB / 8.0 MB (26%), 1/3 layers downloaded, 0/3 unpacked");
  });
  it("shows layers alone where it hides them (containerd image store)", () => {
    expect(progressText({ current: 0, total: 0, layers: 3, layersDownloaded: 2, layersDone: 1 })).toBe("2/3 layers downloaded, 1/3 unpacked");
  });
});
