// `slothbox-agent bake` (docs/reference.md §3): validate, pull, write the manifest, report,
// render for a person (stdout) or as one JSON object (stdout; steps to stderr).
import { progressTracker } from "../bake/progress.ts";
import { runBake } from "../bake/run.ts";
import type { BakeResult } from "../bake/types.ts";
import { foreignText } from "../errors/foreign-text.ts";
import type { Reporter } from "../report/reporter.ts";
import { bakeParts, createReporter, type Runtime } from "../runtime.ts";
import type { Violation } from "../spec/schema.ts";
import { secretUsernames } from "../spec/username.ts";
import type { Io } from "../io.ts";
import { EXIT } from "./exit.ts";
import { HumanRenderer } from "./human.ts";
import { readSpecFile, violationLines, type SpecFile } from "./spec-file.ts";

/** docs/reference.md §7: after the pulls, `bake` spends at most this long delivering events. */
export const DELIVERY_BUDGET_MS = 10_000;

function jsonResult(bakeId: string | null, status: string, result?: BakeResult, violations: Violation[] = []) {
  return {
    bakeId,
    status,
    services: (result?.services ?? []).map((s) => ({
      name: s.name,
      image: s.image,
      status: s.status,
      ...(s.imageId ? { imageId: s.imageId } : {}),
      ...(s.digest ? { digest: s.digest } : {}),
      durationMs: s.durationMs,
      ...(s.error ? { error: s.error } : {}),
      ...(s.signature ? { signature: s.signature } : {}),
    })),
    violations,
  };
}

/** A spec that cannot be read or is invalid: said as JSON or for a person; nothing was fetched or pulled. */
function reportInvalid(parsed: Extract<SpecFile, { ok: false }>, args: { spec: string; json: boolean }, io: Io): number {
  if (args.json) io.stdout(JSON.stringify(jsonResult(parsed.bakeId, "invalid", undefined, parsed.violations)));
  else if (parsed.readError) io.stderr(`error: ${parsed.readError}`);
  else {
    io.stderr(`error: the bake spec ${args.spec} is invalid; nothing was fetched or pulled:`);
    for (const line of violationLines(parsed.violations)) io.stderr(line);
  }
  return EXIT.usage;
}

/** After the bake: where the manifest went, and the events, delivered within DELIVERY_BUDGET_MS or left in the outbox. */
async function deliverAndSummarize(rt: Runtime, reporter: Reporter, result: BakeResult, report: boolean): Promise<string[]> {
  const extra: string[] = [];
  if (result.manifestPath) extra.push(`manifest: ${result.manifestPath}`);
  else extra.push("manifest: not written (the bake failed; the previous manifest is untouched)");
  if (!report) extra.push("events: not sent (--no-report)");
  else if (!reporter.enabled) extra.push("events: not sent (no controlPlaneUrl configured)");
  else {
    const flushed = await reporter.flush(DELIVERY_BUDGET_MS);
    extra.push(
      (flushed.pending === 0
        ? `events: ${flushed.delivered} delivered to ${rt.controlPlane?.url}`
        : `events: ${flushed.delivered} delivered to ${rt.controlPlane?.url}; ${flushed.pending} waiting in ${reporter.outbox.dir} for the daemon to deliver`) +
        (reporter.progress?.sent ? `; ${reporter.progress.sent} progress report(s) sent while pulling` : ""),
    );
  }
  return extra;
}

export async function bakeCommand(
  rt: Runtime,
  args: { spec: string; json: boolean; report: boolean },
  io: Io,
  signal: AbortSignal,
): Promise<number> {
  const out = (line: string) => (args.json ? io.stderr : io.stdout)(rt.scrubber.scrub(line));
  const human = new HumanRenderer(out, () => rt.clock.now());
  const parsed = await readSpecFile(args.spec, rt.config.ssmParameterPrefix);
  if (!parsed.ok) return reportInvalid(parsed, args, io);
  const spec = parsed.spec;
  for (const u of secretUsernames(spec)) rt.scrubber.add(u);
  const reporter = createReporter(rt, { enabled: args.report });
  human.line(`bake ${spec.bakeId} for org ${foreignText(spec.orgId)}: ${spec.services.length} service(s), Docker at ${rt.config.dockerSocket}`);
  const tracker = progressTracker(spec, () => rt.clock.now(), reporter.progress);
  const result = await runBake(
    spec,
    {
      ...bakeParts(rt, rt.newResolver()),
      emit: async (e) => {
        rt.logger.debug({ event: rt.scrubber.scrubValue(e) }, "event");
        await reporter.emit(rt.scrubber.scrubValue(e));
      },
      onStep: (s) => {
        human.step(s);
        tracker.step(s);
      },
    },
    signal,
  );
  const extra = await deliverAndSummarize(rt, reporter, result, args.report);
  if (args.json) {
    for (const e of extra) out(e);
    io.stdout(JSON.stringify(rt.scrubber.scrubValue(jsonResult(spec.bakeId, result.status, result))));
  } else human.summary(result, extra);
  return result.status === "succeeded" ? EXIT.ok : EXIT.failed;
}
