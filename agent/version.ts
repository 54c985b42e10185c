// The agent's version, set by the build (scripts/build.mjs) from package.json.
declare const __AGENT_VERSION__: string | undefined;

export const VERSION: string = typeof __AGENT_VERSION__ === "string" ? __AGENT_VERSION__ : "0.0.0-dev";
