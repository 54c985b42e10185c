import { describe, expect, it } from "vitest";
import { AgentError, asAgentError } from "./agent-error.ts";

describe("asAgentError", () => {
  it("keeps an AgentError, reads the agent's own write on a full disk as disk_full, anything else as internal", () => {
    const known = new AgentError("image_not_found", "manifest unknown");
    expect(asAgentError(known)).toBe(known);
    const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    expect(asAgentError(full).toBody()).toMatchObject({ code: "disk_full", message: "ENOSPC: no space left on device, write", retryable: false });
    expect(asAgentError(new Error("boom")).code).toBe("internal");
    expect(asAgentError("a string").toBody()).toMatchObject({ code: "internal", message: "a string" });
  });
});
