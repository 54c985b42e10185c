// SPEC §7 event bodies.
import { randomBytes } from "node:crypto";
import type { ErrorBody } from "../errors/agent-error.ts";

export type EventType = "bake.started" | "service.pulled" | "service.failed" | "bake.succeeded" | "bake.failed";

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
  [key: string]: unknown;
}

export function newEventId(now: number): string {
  return `evt_${now.toString(36)}${randomBytes(10).toString("hex")}`;
}

export function makeEvent(type: EventType, bakeId: string, now: number, fields: Partial<AgentEvent> = {}): AgentEvent {
  return { id: newEventId(now), type, at: new Date(now).toISOString(), bakeId, ...fields };
}
