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
import {
  classifyDockerMessage,
  isDockerSocketError,
  isPlatformMismatch,
  isUnpackFailure,
  isUnsupportedMediaType,
  registryWords,
  type DockerContext,
} from "../errors/classify.ts";
import { ERROR_CODES, type ErrorCode } from "../errors/codes.ts";
import { foreignText } from "../errors/foreign-text.ts";
import type { Scrubber } from "../errors/scrub.ts";
import { DockerHttpError, type DockerPort } from "./port.ts";
import { PullStreamError } from "./pull-stream.ts";

const PRIVATE_IMAGE_HINT =
  "This image was pulled without a credential, and registries answer anonymous pulls of private images as not found. If the image is private, attach a registry credential to the service (registryCredentialId); otherwise check the repository and tag for a typo.";

export const MEDIA_TYPE_HINT =
  "Docker fetched what this reference names, but it is no container image Docker can run: its manifest or config has a media type Docker does not know (a Helm chart or another OCI artifact, or a Docker schema 1 manifest, which current engines no longer read). Check that the service's image reference names a container image; an old schema 1 image must be rebuilt and pushed with a current docker buildx.";

export const PLATFORM_HINT =
  "The image has no manifest for this box's platform (Docker's line names it, e.g. linux/amd64): it was built for other platforms only. Build and push it for this platform too (docker buildx build --platform linux/amd64,linux/arm64 --push), or bake on a box of an architecture the image has.";

/** What the engine says in its own words about an image the registry served: no registry words to find, or to ask for. */
function engineOwnFailure(message: string): { code: ErrorCode; hint: string } | undefined {
  // docs/reference.md §5's image_unsupported: Docker reads zstd layers since 23.0 (moby/moby#41759); 20.10 reads them as a plain tar.
  if (isUnpackFailure(message)) return { code: "image_unsupported", hint: ERROR_CODES.image_unsupported.hint };
  if (isUnsupportedMediaType(message)) return { code: "image_unsupported", hint: MEDIA_TYPE_HINT };
  // docs/reference.md §5's "repository or tag unknown", for this platform.
  if (isPlatformMismatch(message)) return { code: "image_not_found", hint: PLATFORM_HINT };
  return undefined;
}

/** What the engine found itself, not a registry's refusal: Docker's line is all there is to report. */
const ENGINE_OWN: ReadonlySet<ErrorCode> = new Set(["docker_unavailable", "disk_full", "digest_mismatch"]);

/**
 * A registry's refusal as Docker reported it, carrying its facts (as containerd's
 * ErrUnexpectedStatus carries its status and body): the registry's words where
 * Docker's line kept them (`registryMessage`), and the context they are classified
 * in — whether a credential was sent, whether it was the login, dockerd's HTTP status.
 * Where the words were lost, that is what asking the engine again needs (withRegistryWords).
 */
class RegistryRefusal extends AgentError {
  readonly context: DockerContext;

  constructor(code: ErrorCode, message: string, context: DockerContext, opts: { hint?: string; cause?: unknown; registryMessage?: string }) {
    super(code, message, opts);
    this.context = context;
  }

  /** Docker's line kept no words of the registry's: only a status, or its own sentence. */
  get wordsLost(): boolean {
    return this.registryMessage === undefined;
  }
}

/**
 * Words no rule knows still came from the registry or the engine, not from a bug
 * (docs/reference.md §5): a login's are the registry not accepting the credential;
 * a pull's, the registry not answering as a registry does — retried, then reported
 * with Docker's words kept.
 */
function closestCode(ctx: DockerContext): ErrorCode {
  return ctx.login ? "registry_auth_failed" : "registry_unreachable";
}

function refusal(message: string, words: string | undefined, ctx: DockerContext, cause: unknown): AgentError {
  const code = classifyDockerMessage(words ?? message, ctx) ?? closestCode(ctx);
  if (ENGINE_OWN.has(code)) return new AgentError(code, message, { cause });
  const hint = code === "image_not_found" && !ctx.authenticated ? PRIVATE_IMAGE_HINT : undefined;
  return new RegistryRefusal(code, message, ctx, { cause, ...(hint ? { hint } : {}), ...(words !== undefined ? { registryMessage: words } : {}) });
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
    return refusal(message, words, full, err);
  }
  if (isDockerSocketError(err)) {
    return new AgentError("docker_unavailable", `the Docker daemon did not answer: ${(err as Error).message}`, { cause: err });
  }
  return new AgentError("internal", scrubber.scrub(err instanceof Error ? err.message : String(err)), { cause: err });
}

/**
 * A failure of an Engine API call about an image Docker holds (the inspect before or after
 * a pull): no registry in it. The socket gone (a daemon restarting) and the daemon's own
 * error answer are docker_unavailable, a full disk disk_full; only the agent's own bug is internal.
 */
export function engineFailure(err: unknown, scrubber: Scrubber): AgentError {
  if (err instanceof AgentError) return err;
  if (isDockerSocketError(err)) {
    return new AgentError("docker_unavailable", `the Docker daemon did not answer: ${(err as Error).message}`, { cause: err });
  }
  if (err instanceof DockerHttpError) {
    const message = foreignText(scrubber.scrub(err.message));
    return new AgentError(/no space left on device/i.test(message) ? "disk_full" : "docker_unavailable", message, { cause: err });
  }
  return new AgentError("internal", scrubber.scrub(err instanceof Error ? err.message : String(err)), { cause: err });
}

/**
 * Where the engine dropped the registry's words, asks it for them and classifies on
 * them; otherwise returns `err` as it is. Bounded
 * by the caller's signal (the bake's, with a timeout of its own); a question that fails
 * leaves the first answer standing.
 */
export async function withRegistryWords(
  err: AgentError,
  ref: string,
  auth: RegistryAuth | undefined,
  deps: { docker: DockerPort; scrubber: Scrubber },
  signal: AbortSignal,
): Promise<AgentError> {
  if (!(err instanceof RegistryRefusal) || !err.wordsLost) return err;
  try {
    await deps.docker.distributionInspect(ref, auth, signal);
    return err;
  } catch (answer) {
    if (!(answer instanceof DockerHttpError)) return err;
    const words = registryWords(foreignText(deps.scrubber.scrub(answer.message)));
    if (words === undefined) return err;
    const asked = refusal(err.message, words, err.context, err.cause);
    asked.attempts = err.attempts;
    return asked;
  }
}
