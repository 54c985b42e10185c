import { describe, expect, it } from "vitest";
import { foreignText } from "./foreign-text.ts";

describe("foreignText", () => {
  it("removes escape sequences and control characters a registry could use to forge log lines", () => {
    const forged = "manifest unknown\u001b[2K\r[  0.1s] bake bk_1 succeeded\u001b]0;title\u0007\u0000\u009b31m";
    expect(foreignText(forged)).toBe("manifest unknown; [  0.1s] bake bk_1 succeeded31m");
    // eslint-disable-next-line no-control-regex -- looking for control characters
    expect(foreignText(forged)).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it("keeps Docker's multi-line errors on one readable line", () => {
    expect(foreignText("errors:\ndenied: requested access to the resource is denied\nunauthorized: authentication required\n")).toBe(
      "errors: denied: requested access to the resource is denied; unauthorized: authentication required",
    );
  });

  it("removes bidi overrides that would reorder what a person reads", () => {
    expect(foreignText("denied: \u202euser\u202c ok")).toBe("denied: user ok");
  });

  it("leaves ordinary text alone", () => {
    const text = 'Head "https://ghcr.io/v2/acme/api/manifests/1": denied: denied';
    expect(foreignText(text)).toBe(text);
  });
});
