import { describe, expect, it } from "vitest";
import { Scrubber } from "../errors/scrub.ts";
import type { Credential } from "../spec/schema.ts";
import { fetchTokenCredential } from "./ssm.ts";
import type { GetParameter } from "./types.ts";

const PREFIX = "/slothbox/registry-credentials/";
const cred: Credential = { id: "rc_gh", type: "token", registry: "ghcr.io", username: "acme-bot" };
const fetch = (getParameter: GetParameter, scrubber = new Scrubber()) => fetchTokenCredential(cred, PREFIX, { getParameter, endpointOf: async () => "https://ssm.us-east-1.amazonaws.com" }, scrubber, new AbortController().signal);

describe("fetchTokenCredential", () => {
  it("reads a SecureString as the password", async () => {
    expect(await fetch(async () => ({ type: "SecureString", value: "ghp_x" }))).toEqual({ username: "acme-bot", password: "ghp_x", serverAddress: "ghcr.io" });
  });

  it("keeps its own codes for a parameter that is not a SecureString, or empty", async () => {
    await expect(fetch(async () => ({ type: "String", value: "v" }))).rejects.toMatchObject({ code: "secret_not_secure" });
    await expect(fetch(async () => ({ type: "SecureString", value: "" }))).rejects.toMatchObject({ code: "secret_not_found", message: `SSM parameter ${PREFIX}rc_gh is empty` });
  });

  it.each([
    ["no Parameter", async () => undefined, "https://ssm.us-east-1.amazonaws.com answered without Parameter"],
    ["a Parameter without Type", async () => ({ value: "ghp_x" }), "https://ssm.us-east-1.amazonaws.com answered without Parameter.Type"],
    ["a SecureString without Value", async () => ({ type: "SecureString" }), "https://ssm.us-east-1.amazonaws.com answered without Parameter.Value"],
  ] as [string, GetParameter, string][])("reports an answer with %s as what it is", async (_, answer, words) => {
    const scrubber = new Scrubber();
    const err = await fetch(answer, scrubber).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "aws_unreachable", message: `ssm:GetParameter ${PREFIX}rc_gh: ${words}` });
    // A value that came without its type is never taken as a secret, nor shown.
    expect((err as Error).message).not.toContain("ghp_x");
  });

  it("reports an AWS error no rule knows as internal, in AWS's words", async () => {
    const validation = Object.assign(new Error("1 validation error detected"), { name: "ValidationException", $metadata: { httpStatusCode: 400 } });
    await expect(fetch(() => Promise.reject(validation))).rejects.toMatchObject({
      code: "internal",
      message: `ssm:GetParameter ${PREFIX}rc_gh: ValidationException: 1 validation error detected`,
    });
  });
});
