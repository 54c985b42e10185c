import { describe, expect, it } from "vitest";
import { Scrubber } from "../errors/scrub.ts";
import { parseEcrHost } from "../spec/registry.ts";
import type { Credential } from "../spec/schema.ts";
import { fetchEcrCredential } from "./ecr.ts";
import type { GetEcrToken } from "./types.ts";

const registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const cred: Credential = { id: "rc_ecr", type: "ecr", registry, ecr: parseEcrHost(registry)! };
const fetch = (getEcrToken: GetEcrToken) => fetchEcrCredential(cred, { getEcrToken, endpointOf: async () => "https://api.ecr.us-east-1.amazonaws.com" }, new Scrubber(), 0, new AbortController().signal);

describe("fetchEcrCredential", () => {
  it("logs in as the token's user with its password", async () => {
    const auth = await fetch(async () => ({ authorizationToken: Buffer.from("AWS:pw").toString("base64") }));
    expect(auth).toEqual({ username: "AWS", password: "pw", serverAddress: registry });
  });

  it.each([
    ["no authorizationData", async () => undefined, "https://api.ecr.us-east-1.amazonaws.com answered without authorizationData"],
    ["authorizationData without a token", async () => ({}), "https://api.ecr.us-east-1.amazonaws.com answered without an authorizationToken"],
    ["an empty token", async () => ({ authorizationToken: "" }), "https://api.ecr.us-east-1.amazonaws.com answered without an authorizationToken"],
    ["a token that is not base64 of user:password", async () => ({ authorizationToken: "bm8gY29sb24=" }), "https://api.ecr.us-east-1.amazonaws.com answered with a token that is not base64 of user:password"],
  ] as [string, GetEcrToken, string][])("reports an answer with %s as what it is, not as the agent's bug", async (_, answer, words) => {
    const err = await fetch(answer).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "aws_unreachable", message: `ecr:GetAuthorizationToken for registry 123456789012 in eu-west-1: ${words}` });
  });
});
