// What a bake produces and tells as it goes: per-service results, the bake's
// result, and the steps a renderer (terminal, Packer log, JSON mode's stderr) shows.
import type { ErrorBody } from "../errors/agent-error.ts";
import type { Progress } from "../docker/types.ts";
import type { VerifiedSignature } from "../signatures/types.ts";
import type { Credential } from "../spec/schema.ts";

export type ServiceStatus = "pulled" | "present" | "failed" | "skipped";

export interface ServiceResult {
  name: string;
  image: string;
  status: ServiceStatus;
  imageId?: string;
  digest?: string;
  durationMs: number;
  error?: ErrorBody;
  /** The signature that verified this service's image with its policy (docs/reference.md §2a). */
  signature?: VerifiedSignature;
}

/** How one image's check against one policy ended: `reused` is a verification made before for the same digest and keys. */
export type VerifyOutcome = "verified" | "reused" | "rejected" | "failed";

export interface BakeResult {
  bakeId: string;
  status: "succeeded" | "failed";
  services: ServiceResult[];
  startedAt: string;
  durationMs: number;
  /** Why a failed bake failed: its first failure, or `interrupted`. */
  error?: ErrorBody;
  manifestPath?: string;
}

/** What a renderer (terminal, Packer log, JSON mode's stderr) is told as the bake goes. */
export type BakeStep =
  | { kind: "docker-wait"; message: string }
  | { kind: "disk"; message: string }
  | { kind: "credential"; credential: Credential; phase: "fetch" | "login" | "logged-in" }
  | { kind: "pull-start"; image: string; services: string[]; credentialId?: string }
  | { kind: "progress"; image: string; progress: Progress }
  | { kind: "retry"; image: string; error: ErrorBody; attempt: number; retriesLeft: number }
  | { kind: "credential-retry"; credential: Credential; error: ErrorBody; attempts: number; budgetLeftMs: number }
  | { kind: "verify-start"; image: string; policyId: string }
  | { kind: "verify"; image: string; policyId: string; outcome: VerifyOutcome; digest?: string; signature?: VerifiedSignature }
  | { kind: "image-done"; image: string; services: string[]; status: ServiceStatus; digest?: string; durationMs: number; error?: ErrorBody };
