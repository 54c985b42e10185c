// A failure of the Engine API, as the operator reads it: Docker's own line
// (scrubbed, without control characters), the registry's words where Docker kept
// them, and the code they mean (errors/classify.ts). Where the engine dropped the
// registry's words (the containerd image store keeps only an HTTP status), the
// agent asks the engine for them: GET /distribution/<ref>/json with the same
// credential answers with the registry's message on every engine and store, so
// one extra request, on failure only, lets the same refusal read the same
// everywhere. Both lines are reported: Docker's as Docker said it, and the
// registry's words beside it. What the engine says in its own words about an image
// the registry did serve — a layer it cannot unpack, no manifest for its platform —
// carries no registry words, and a hint of its own.
import type { RegistryAuth } from "../credentials/types.ts";
import { AgentError } from "../errors/agent-error.ts";
import { classifyDockerMessage, isDockerSocketError, isPlatformMismatch, isUnpackFailure, registryWords, type DockerContext } from "../errors/classify.ts";
import type { ErrorCode } from "../errors/codes.ts";
import { foreignText } from "../errors/foreign-text.ts";
import type { Scrubber } from "../errors/scrub.ts";
import { DockerHttpError, type DockerPort } from "./port.ts";
import { PullStreamError } from "./pull-stream.ts";

export const PRIVATE_IMAGE_HINT =
  "This image was pulled without a credential, and registries answer anonymous pulls of private images as not found. If the image is private, attach a registry credential to the service (registryCredentialId); otherwise check the repository and tag for a typo.";

/**
 * docs/reference.md §5 has no code for an image the engine cannot unpack, so it stays `internal`; this
 * hint says it is not the agent's bug, and what to do. Docker reads zstd layers since 23.0
 * (moby/moby#41759); 20.10 reads them as a plain tar.
 */
export const UNPACK_HINT =
  "Docker fetched this image but could not unpack one of its layers. Docker engines before 23.0 (Debian 12's docker.io is 20.10) cannot read zstd-compressed layers (application/vnd.oci.image.layer.v1.tar+zstd) and say \"invalid tar header\"; a layer pushed corrupt fails the same way on any engine. Rebuild the image with gzip layers (docker buildx build --output type=image,compression=gzip,force-compression=true,push=true), or bake on Docker 23 or later.";

export const PLATFORM_HINT =
  "The image has no manifest for this box's platform (Docker's line names it, e.g. linux/amd64): it was built for other platforms only. Build and push it for this platform too (docker buildx build --platform linux/amd64,linux/arm64 --push), or bake on a box of an architecture the image has.";

/** What the engine says in its own words about an image the registry served: no registry words to find, or to ask for. */
function engineOwnFailure(message: string): { code: ErrorCode; hint: string } | undefined {
  if (isUnpackFailure(message)) return { code: "internal", hint: UNPACK_HINT };
  // docs/reference.md §5's "repository or tag unknown", for this platform.
  if (isPlatformMismatch(message)) return { code: "image_not_found", hint: PLATFORM_HINT };
  return undefined;
}

/** A refusal whose words the engine dropped: the context to classify the recovered words in. */
const lostWords = new WeakMap<AgentError, DockerContext>();

/** What the engine found itself, not a registry's refusal: Docker's line is all there is to report. */
const ENGINE_OWN: ReadonlySet<ErrorCode> = new Set(["docker_unavailable", "disk_full", "digest_mismatch"]);

function refusal(message: string, words: string | undefined, ctx: DockerContext, cause: unknown): AgentError {
  const code = classifyDockerMessage(words ?? message, ctx);
  const hint = code === "image_not_found" && !ctx.authenticated ? PRIVATE_IMAGE_HINT : undefined;
  const registryMessage = words !== undefined && !ENGINE_OWN.has(code) ? words : undefined;
  return new AgentError(code, message, { cause, ...(hint ? { hint } : {}), ...(registryMessage !== undefined ? { registryMessage } : {}) });
}

/** Turns any failure of a login or a pull attempt into an AgentError with Docker's own words. */
export function dockerFailure(err: unknown, ctx: Omit<DockerContext, "statusCode">, scrubber: Scrubber): AgentError {
  if (err instanceof AgentError) return err;
  if (err instanceof DockerHttpError || err instanceof PullStreamError) {
    const message = foreignText(scrubber.scrub(err.message));
    const own = engineOwnFailure(message);
    if (own) return new AgentError(own.code, message, { cause: err, hint: own.hint });
    const words = registryWords(message);
    const full = err instanceof DockerHttpError ? { ...ctx, statusCode: err.statusCode } : ctx;
    const e = refusal(message, words, full, err);
    if (words === undefined && !ENGINE_OWN.has(e.code)) lostWords.set(e, full);
    return e;
  }
  if (isDockerSocketError(err)) {
    return new AgentError("docker_unavailable", `the Docker daemon did not answer: ${(err as Error).message}`, { cause: err });
  }
  return new AgentError("internal", scrubber.scrub(err instanceof Error ? err.message : String(err)), { cause: err });
}

/**
 * Where the engine dropped the registry's words, asks it for them and classifies on
 * them; otherwise returns `err` as it is. Bounded by the caller's signal (the bake's,
 * with a timeout of its own); a question that fails leaves the first answer standing.
 */
export async function withRegistryWords(
  err: AgentError,
  ref: string,
  auth: RegistryAuth | undefined,
  deps: { docker: DockerPort; scrubber: Scrubber },
  signal: AbortSignal,
): Promise<AgentError> {
  const ctx = lostWords.get(err);
  if (!ctx) return err;
  try {
    await deps.docker.distributionInspect(ref, auth, signal);
    return err;
  } catch (answer) {
    if (!(answer instanceof DockerHttpError)) return err;
    const words = registryWords(foreignText(deps.scrubber.scrub(answer.message)));
    if (words === undefined) return err;
    const asked = refusal(err.message, words, ctx, err.cause);
    asked.attempts = err.attempts;
    return asked;
  }
}
