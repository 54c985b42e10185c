import { describe, expect, it } from "vitest";
import { jsonSyntaxMessage } from "./json-syntax.ts";

const parseError = (text: string) => {
  try {
    JSON.parse(text);
  } catch (err) {
    return err;
  }
  throw new Error("parsed");
};

describe("jsonSyntaxMessage", () => {
  it("keeps what is wrong and where, never the input V8 quotes", () => {
    const text = '{"registry": "registry.digitalocean.com", "username": "dop_v1_0123456789abcdef",\n "x": }';
    const message = jsonSyntaxMessage(parseError(text));
    expect((parseError(text) as Error).message).toContain('"x"');
    expect(message).toBe("Unexpected token '}'");
    expect(jsonSyntaxMessage(parseError('{"a": "dop_v1_secret" x}'))).toMatch(/^Expected ',' or '}' after property value in JSON at position 22/);
    expect(jsonSyntaxMessage(parseError(""))).toBe("Unexpected end of JSON input");
    // Each of the forms V8 quotes in: cut on the left, on both sides, not at all.
    expect(jsonSyntaxMessage(parseError('{"username": dop_v1_0123456789abcdef}'))).toBe("Unexpected token 'd'");
    expect(jsonSyntaxMessage(parseError('x{"username": "dop_v1_0"}'))).toBe("Unexpected token 'x'");
    expect(jsonSyntaxMessage(parseError('["dop_v1_0",]'))).toBe("Unexpected token ']'");
  });
});
