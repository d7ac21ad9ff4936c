/**
 * A task as the API shows it (HTTP answers, and the `task` message pushed to an agent): timestamps as ISO 8601,
 * payload and result parsed. lib/present.ts builds it from a TaskRecord; agents read it with the loose schemas
 * below, which require only what an agent uses, since the contract lets the mesh add fields.
 */
import { z } from "zod";
import type { Requirements, TaskStatus } from "../records.ts";

export interface TaskJson {
  id: string;
  type: string;
  pool: string;
  tenant: string;
  status: TaskStatus;
  priority: number;
  payload: unknown;
  attempts: number;
  maxAttempts: number;
  timeoutMs: number;
  idempotencyKey: string | null;
  dependsOn: string[];
  requires: Requirements;
  result: unknown;
  error: { message: string; [key: string]: unknown } | null;
  agentId: string | null;
  createdAt: string;
  updatedAt: string;
  runAfter: string | null;
  finishedAt: string | null;
  leaseExpiresAt: string | null;
  /** The shard that holds the task ("0", "1", ...). */
  shard: string;
  /** The payload (result) is kept in R2 and was left out of this answer: it is null here (docs/payloads.md). */
  payloadOmitted?: true;
  resultOmitted?: true;
}

export interface LeasedTaskJson extends TaskJson {
  attempt: number;
  leaseToken: string;
  leaseExpiresAt: string;
}

/** What an agent needs of a leased task. */
export const LeasedTaskWire = z.looseObject({
  id: z.string().min(1),
  type: z.string().min(1),
  pool: z.string(),
  payload: z.unknown(),
  attempt: z.number().int().min(1),
  timeoutMs: z.number().int().positive(),
  leaseToken: z.string().min(1),
  leaseExpiresAt: z.string(),
  /** The payload was left out (too large for the frame or answer): fetch it with GET /v1/tasks/:id/payload. */
  payloadOmitted: z.boolean().optional(),
});
export type LeasedTaskWire = z.infer<typeof LeasedTaskWire>;

/** What a client needs of any task. */
export const TaskWire = z.looseObject({
  id: z.string(),
  type: z.string(),
  pool: z.string(),
  status: z.string(),
  result: z.unknown().optional(),
  error: z.unknown().optional(),
});
export type TaskWire = z.infer<typeof TaskWire>;
