// docs/reference.md §7 event bodies.
import { randomBytes } from "node:crypto";
import type { ErrorBody } from "../errors/agent-error.ts";
import type { VerifiedSignature } from "../signatures/types.ts";

export type EventType = "bake.started" | "service.progress" | "service.pulled" | "service.failed" | "bake.succeeded" | "bake.failed";

export interface AgentEvent {
  id: string;
  type: EventType;
  at: string;
  bakeId: string;
  service?: string;
  image?: string;
  digest?: string;
  cached?: boolean;
  error?: ErrorBody;
  /** service.pulled of a service whose image verified against its signature policy (docs/reference.md §2a). */
  signature?: VerifiedSignature;
  [key: string]: unknown;
}

function newEventId(now: number): string {
  return `evt_${now.toString(36)}${randomBytes(10).toString("hex")}`;
}

export function makeEvent(type: EventType, bakeId: string, now: number, fields: Partial<AgentEvent> = {}): AgentEvent {
  return { id: newEventId(now), type, at: new Date(now).toISOString(), bakeId, ...fields };
}

/** One line a person reads in the journal: what happened, and for a failure its code, words and hint. */
export function describeEvent(e: AgentEvent): string {
  const what = e.service ? `service ${e.service} (${e.image ?? "?"})` : "";
  const failure = e.error ? `${e.error.code}: ${e.error.message} — hint: ${e.error.hint}` : "";
  const reconcile = e["reconcile"] === true ? " (reconcile)" : "";
  switch (e.type) {
    case "bake.started":
      return `bake ${e.bakeId} started`;
    case "service.progress":
      return `bake ${e.bakeId}: ${what} pulling`;
    case "service.pulled": {
      // The journal names the key that verified a signed image (docs/reference.md §2a).
      const s = e.signature;
      const signed = s ? `, signature verified: ${s.format} by key ${s.keyId} of ${s.policyId}` : "";
      return `bake ${e.bakeId}${reconcile}: ${what} ${e.cached ? "present" : "pulled"} ${e.digest ?? ""}`.trimEnd() + signed;
    }
    case "service.failed":
      return `bake ${e.bakeId}${reconcile}: ${what} failed: ${failure}`;
    case "bake.succeeded":
      return `bake ${e.bakeId} succeeded`;
    case "bake.failed":
      return `bake ${e.bakeId} failed${failure ? `: ${failure}` : ""}`;
  }
}
