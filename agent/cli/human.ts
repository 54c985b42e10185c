// Human output: one line per step, readable on a terminal and in Packer's
// line-by-line log (no carriage returns, no colours), progress at most every
// few seconds per image, then a summary table and, for each failure, the code,
// Docker's (or AWS's) words and the hint. Every string that came from the spec
// or from outside passes foreignText: a username or a parameterName is free text,
// and must neither drive the terminal nor forge a line.
import type { BakeResult, BakeStep, ServiceResult } from "../bake/types.ts";
import type { Progress } from "../docker/types.ts";
import type { ErrorBody } from "../errors/agent-error.ts";
import { foreignText as t } from "../errors/foreign-text.ts";

/** Progress lines per image at most this often: enough to show life in a Packer log. */
const PROGRESS_EVERY_MS = 3000;

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * Bytes where the engine counts them, against the whole pull's once every layer is sized
 * (before that a percentage would jump back as more layers start); layers always (the
 * containerd image store hides byte counts).
 */
export function progressText(p: Progress): string {
  const layers = `${p.layersDownloaded}/${p.layers} layers downloaded, ${p.layersDone}/${p.layers} unpacked`;
  if (p.total === 0) return layers;
  if (p.layersSized < p.layers) return `${mb(p.current)} so far, ${layers}`;
  return `${mb(p.current)} / ${mb(p.total)} (${Math.floor((100 * p.current) / p.total)}%), ${layers}`;
}

const FORMAT = { cosign: "cosign signature", "sigstore-bundle": "sigstore bundle" } as const;

const retriesLeft = (n: number) => `${n} ${n === 1 ? "retry" : "retries"} left`;

/** Whether the failure may pass on a rebake, and whether the agent already retried it. */
function retryNote(e: ErrorBody): string {
  if (e.attempts === undefined) return e.retryable ? " (retryable)" : "";
  const tried = e.attempts === 1 ? "attempted once" : `${e.attempts} attempts failed`;
  if (!e.retryable) return ` (not retryable; ${tried})`;
  // AWS calls retry on budgets of time, not pullRetries (docs/reference.md §5).
  if (e.code === "aws_throttled") return ` (retryable; ${tried}, throttled until awsMaxWaitSeconds)`;
  if (e.code === "aws_unreachable" || e.code === "aws_credentials_unavailable") return ` (retryable; ${tried} within a minute)`;
  return e.attempts === 1 ? ` (retryable; ${tried}, pullRetries is 0)` : ` (retryable; ${tried}, the retries are used up)`;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export class HumanRenderer {
  private readonly write: (line: string) => void;
  private readonly now: () => number;
  private readonly t0: number;
  private readonly lastProgress = new Map<string, number>();

  constructor(write: (line: string) => void, now: () => number) {
    this.write = write;
    this.now = now;
    this.t0 = now();
  }

  line(text: string): void {
    const t = ((this.now() - this.t0) / 1000).toFixed(1).padStart(5);
    this.write(`[${t}s] ${text}`);
  }

  step(s: BakeStep): void {
    switch (s.kind) {
      case "docker-wait":
      case "disk":
        return this.line(t(s.message));
      case "credential": {
        const c = s.credential;
        if (s.phase === "fetch") {
          const where = c.type === "ecr" ? `ecr:GetAuthorizationToken (${t(c.ecr?.region ?? "")})` : `SSM ${t(c.parameterName ?? "")}`;
          return this.line(`credential ${t(c.id)}: ${c.type} for ${t(c.registry)} — reading ${where}`);
        }
        // The username only now: some registries' usernames are the secret itself (DigitalOcean),
        // which the scrubber knows once it has been fetched.
        if (s.phase === "login") return this.line(`credential ${t(c.id)}: logging in to ${t(c.registry)}${c.username ? ` as ${t(c.username)}` : ""}`);
        if (s.phase === "logged-in") return this.line(`credential ${t(c.id)}: login to ${t(c.registry)} succeeded`);
        return;
      }
      case "pull-start":
        // The engine names a pull's layers one line at a time: a progress line at once would count only the first.
        this.lastProgress.set(s.image, this.now());
        return this.line(`pulling ${t(s.image)} for ${s.services.map(t).join(", ")}${s.credentialId ? ` with ${t(s.credentialId)}` : " (anonymous)"}`);
      case "progress": {
        const last = this.lastProgress.get(s.image) ?? 0;
        if (this.now() - last < PROGRESS_EVERY_MS || s.progress.layers === 0) return;
        this.lastProgress.set(s.image, this.now());
        return this.line(`  ${t(s.image)}: ${progressText(s.progress)}`);
      }
      case "retry":
        return this.line(`  ${t(s.image)}: ${s.error.code} (${t(s.error.message)}); retrying, ${retriesLeft(s.retriesLeft)}`);
      case "credential-retry":
        return this.line(
          `credential ${t(s.credential.id)}: ${s.error.code} (${t(s.error.message)}); ${s.attempts} ${s.attempts === 1 ? "attempt" : "attempts"} so far, retrying for up to ${Math.ceil(s.budgetLeftMs / 1000)} s more`,
        );
      case "verify-start":
        return this.line(`verifying ${t(s.image)}: looking for signatures of its digest by a key of ${t(s.policyId)}`);
      case "verify": {
        const by = s.signature ? `${FORMAT[s.signature.format]} by key ${s.signature.keyId} of ${t(s.policyId)}` : "";
        if (s.outcome === "verified") return this.line(`verified ${t(s.image)} ${t(s.digest ?? "")}: ${by}`);
        if (s.outcome === "reused") return this.line(`verified ${t(s.image)} ${t(s.digest ?? "")}: ${by} (verified before; reused)`);
        if (s.outcome === "rejected") return this.line(`NOT VERIFIED ${t(s.image)} ${t(s.digest ?? "")}: no signature verifies with a key of ${t(s.policyId)}; nothing pulled`);
        return this.line(`verifying ${t(s.image)}: the registry failed while looking for signatures`);
      }
      case "image-done":
        if (s.status === "pulled") return this.line(`pulled ${t(s.image)} ${t(s.digest ?? "")} in ${seconds(s.durationMs)}`);
        if (s.status === "present") return this.line(`present ${t(s.image)} (already in Docker, nothing pulled)`);
        if (s.status === "skipped") return this.line(`skipped ${t(s.image)} (the bake had already failed)`);
        return this.line(`FAILED ${t(s.image)}: ${s.error?.code}`);
    }
  }

  summary(result: BakeResult, extra: string[]): void {
    const rows: string[][] = [["SERVICE", "IMAGE", "RESULT", "DIGEST"]];
    for (const s of result.services) rows.push([t(s.name), t(s.image), s.status, t(s.digest ?? (s.error ? s.error.code : "-"))]);
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    this.write("");
    for (const r of rows) this.write(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "));
    const signed = result.services.filter((s) => s.signature);
    if (signed.length > 0) this.write("");
    for (const s of signed) this.write(`signature: ${t(s.name)}: ${FORMAT[s.signature!.format]} by key ${s.signature!.keyId} of ${t(s.signature!.policyId)}`);
    const failures: ServiceResult[] = result.services.filter((s) => s.status === "failed");
    for (const f of failures) {
      this.write("");
      this.write(`error: service ${t(f.name)} (${t(f.image)}): ${f.error?.code}${f.error ? retryNote(f.error) : ""}`);
      this.write(`  reported: ${t(f.error?.message ?? "")}`);
      // Where the engine dropped the registry's words, the agent asked for them: shown beside Docker's line.
      if (f.error?.registryMessage && !f.error.message.includes(f.error.registryMessage)) this.write(`  registry said: ${t(f.error.registryMessage)}`);
      this.write(`  hint: ${t(f.error?.hint ?? "")}`);
    }
    this.write("");
    const count = (st: string) => result.services.filter((s) => s.status === st).length;
    this.write(
      `bake ${t(result.bakeId)} ${result.status} in ${seconds(result.durationMs)}: ${count("pulled")} pulled, ${count("present")} present, ${count("failed")} failed, ${count("skipped")} skipped`,
    );
    for (const e of extra) this.write(e);
  }
}
