// Node's own switches the agent refuses to run under. NODE_DEBUG makes Node
// print each request's headers — the instance role's session token and a signed,
// replayable SSM request among them — and Node reads it once, at start-up, so
// unsetting it from here on changes nothing; NODE_OPTIONS loads code or opens an
// inspector before the agent's first line runs. Re-executing without them would
// leave a parent that already has them: the agent stops instead. The systemd
// unit and the launcher drop both (docs/reference.md §4) and keep NODE_EXTRA_CA_CERTS.

const REFUSED = ["NODE_DEBUG", "NODE_OPTIONS"] as const;

/** The sentence to refuse with, or undefined when neither variable switches anything on. */
export function unsafeNodeEnv(env: Record<string, string | undefined>): string | undefined {
  // Set but empty, they switch nothing on.
  const set = REFUSED.find((name) => (env[name] ?? "").trim() !== "");
  if (!set) return undefined;
  return `refusing to run with ${set} set: NODE_DEBUG and NODE_OPTIONS make Node print request headers (the instance role's credentials among them) or load other code into the agent; unset them.`;
}
