// docs/reference.md §3: the command line, parsed with node:util parseArgs.
import { parseArgs } from "node:util";

export const USAGE = `Usage:
  slothbox-agent bake --spec FILE [--config FILE] [--json] [--no-report]
  slothbox-agent check-credential --spec FILE --id CREDENTIAL_ID [--config FILE]
  slothbox-agent verify --spec FILE --service NAME [--config FILE]
  slothbox-agent daemon [--config FILE]
  slothbox-agent --version | --help

Commands:
  bake              Pull every service image of the bake spec, write the manifest, report events.
  check-credential  Resolve one credential of the spec and log in to its registry; pulls nothing.
  verify            Look up and check the signatures of one service's image against its signature policy; pulls nothing.
  daemon            Serve the health API, keep the box's images present, run bakes the control plane asks for.

Options:
  --spec FILE       The bake spec (JSON, SPEC §2).
  --id ID           The registry credential to check.
  --service NAME    The service whose image's signatures to check.
  --config FILE     Configuration file (default /etc/slothbox/agent.json; SLOTHBOX_* variables override it).
  --json            Print one JSON result object on stdout; progress goes to stderr.
  --no-report       Send no events to the control plane.

Exit codes: 0 success · 1 the bake or check failed (verify: no signature verified) · 2 bad usage or invalid spec · 78 invalid configuration.`;

export type Command =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "bake"; spec: string; config?: string; json: boolean; report: boolean }
  | { kind: "check-credential"; spec: string; id: string; config?: string }
  | { kind: "verify"; spec: string; service: string; config?: string }
  | { kind: "daemon"; config?: string };

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export function parseCommand(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        spec: { type: "string" },
        id: { type: "string" },
        service: { type: "string" },
        config: { type: "string" },
        json: { type: "boolean", default: false },
        "no-report": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "v", default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) return { kind: "help" };
  if (v.version) return { kind: "version" };
  const [cmd, ...extra] = positionals;
  if (!cmd) throw new UsageError("no command given");
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const config = v.config !== undefined ? { config: v.config } : {};
  const only = (allowed: string[]) => {
    for (const k of ["spec", "id", "service", "json", "no-report"] as const) {
      const set = typeof v[k] === "boolean" ? v[k] === true : v[k] !== undefined;
      if (set && !allowed.includes(k)) throw new UsageError(`--${k} does not apply to ${cmd}`);
    }
  };
  switch (cmd) {
    case "bake":
      only(["spec", "json", "no-report"]);
      if (!v.spec) throw new UsageError("bake needs --spec FILE");
      return { kind: "bake", spec: v.spec, json: v.json === true, report: v["no-report"] !== true, ...config };
    case "check-credential":
      only(["spec", "id"]);
      if (!v.spec) throw new UsageError("check-credential needs --spec FILE");
      if (!v.id) throw new UsageError("check-credential needs --id CREDENTIAL_ID");
      return { kind: "check-credential", spec: v.spec, id: v.id, ...config };
    case "verify":
      only(["spec", "service"]);
      if (!v.spec) throw new UsageError("verify needs --spec FILE");
      if (!v.service) throw new UsageError("verify needs --service NAME");
      return { kind: "verify", spec: v.spec, service: v.service, ...config };
    case "daemon":
      only([]);
      return { kind: "daemon", ...config };
    default:
      throw new UsageError(`unknown command "${cmd}"`);
  }
}
