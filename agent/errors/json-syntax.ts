// JSON.parse's own words about a syntax error, without the input they quote: V8
// cites up to ~10 characters around the fault (`Unexpected token '}', ..."n",
// "b": }" is not valid JSON`), and in a spec or a config those may be part of a
// token that is not registered with the scrubber yet.
export function jsonSyntaxMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/, (\.\.\.)?"[\s\S]*"(\.\.\.)? is not valid JSON$/, "");
}
