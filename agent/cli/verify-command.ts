// `slothbox-agent verify` (docs/reference.md §2a, §3): steps 1–3 of a signed image's
// bake for one service — resolve its reference to a digest, look up both forms of
// cosign signature, check them against the service's policy — and print what was
// found and why each signature was rejected; pulls nothing. The troubleshooting
// tool for "why is my image refused?". Exit 0 verified, 1 not verified or the
// registry failed, 2 bad usage, an invalid spec or a service without a policy.
import { reportLines } from "../bake/signed.ts";
import { asAgentError } from "../errors/agent-error.ts";
import { foreignText as t } from "../errors/foreign-text.ts";
import type { Io } from "../io.ts";
import { routeWords } from "../net/proxy.ts";
import { requestHost } from "../registry/client.ts";
import type { Runtime } from "../runtime.ts";
import type { SignatureVerifier } from "../signatures/types.ts";
import { EXIT } from "./exit.ts";
import { specForCommand } from "./spec-file.ts";

export async function verifyCommand(rt: Runtime, args: { spec: string; service: string }, io: Io, signal: AbortSignal, verifier: SignatureVerifier): Promise<number> {
  const say = (line: string) => io.stdout(rt.scrubber.scrub(line));
  const spec = await specForCommand(args.spec, rt.config.ssmParameterPrefix, rt.scrubber, io);
  if (!spec) return EXIT.usage;
  const service = spec.services.find((s) => s.name === args.service);
  if (!service) {
    io.stderr(`error: no service named "${t(args.service)}" in the spec (have: ${spec.services.map((s) => t(s.name)).join(", ")})`);
    return EXIT.usage;
  }
  const policy = service.signaturePolicy;
  if (!policy) {
    io.stderr(`error: service ${t(service.name)} names no signaturePolicyId: its image is pulled without a signature check, and there is nothing to verify`);
    return EXIT.usage;
  }
  const cred = service.credential;
  const host = requestHost(service.ref.registry);
  say(`service ${t(service.name)}: ${t(service.image)}, signature policy ${t(policy.id)}${policy.label ? ` "${t(policy.label)}"` : ""}`);
  say(`  credential: ${cred ? `${t(cred.id)} (${cred.type})` : "none (anonymous)"}`);
  say(`  the agent asks ${t(host)} itself (not dockerd), ${routeWords(rt.proxy.route(`https://${host}/v2/`))}`);
  try {
    const auth = cred ? (await rt.newResolver().resolve(cred, signal)).auth : undefined;
    const report = await verifier.verify({ image: service.image, ...(auth ? { auth } : {}), policy, signal });
    for (const line of reportLines(report, policy)) say(t(line));
    const ok = report.accepted !== undefined && report.accepted.policyId === policy.id && policy.keys.some((k) => k.keyId === report.accepted?.keyId);
    say(ok ? `${t(service.name)}: a bake would pull ${t(service.ref.name)}@${t(report.digest)}` : `${t(service.name)}: a bake would fail with image_signature_invalid and pull nothing`);
    return ok ? EXIT.ok : EXIT.failed;
  } catch (err) {
    if (signal.aborted) throw err;
    const e = asAgentError(err);
    say(`  result:   FAILED ${e.code}${e.retryable ? " (retryable)" : ""}`);
    say(`  reported: ${t(e.message)}`);
    say(`  hint:     ${t(e.hint)}`);
    return EXIT.failed;
  }
}
