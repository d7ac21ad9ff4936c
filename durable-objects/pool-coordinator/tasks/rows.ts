import type { TaskRecord, TaskStatus } from "../../../contract/records.ts";
import type { Lane } from "../queue-rules.ts";

/** A row of the tasks table, as SQLite returns it. */
export interface TaskRow {
  [column: string]: SqlStorageValue;
  seq: number;
  id: string;
  lane: number;
  tenant: string;
  type: string;
  status: TaskStatus;
  priority: number;
  payload: string;
  attempts: number;
  max_attempts: number;
  timeout_ms: number;
  idempotency_key: string | null;
  depends_on: string;
  pending_deps: number;
  result: string | null;
  error: string | null;
  agent_id: string | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  run_after: number | null;
  timer_at: number | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  leased_at: number | null;
}

/** The record of a row, by status (the table's CHECK constraints guarantee the fields each status has). */
export function toRecord(row: TaskRow, pool: string, shard: number, lane: Lane): TaskRecord {
  const fields = {
    id: row.id,
    type: row.type,
    pool,
    tenant: row.tenant,
    priority: row.priority,
    payload: row.payload,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    timeoutMs: row.timeout_ms,
    idempotencyKey: row.idempotency_key,
    dependsOn: JSON.parse(row.depends_on) as string[],
    requires: lane.requires,
    result: row.result,
    error: row.error,
    agentId: row.agent_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    runAfter: row.run_after,
    shard,
  };
  switch (row.status) {
    case "leased":
      return { ...fields, status: "leased", agentId: row.agent_id!, finishedAt: null, leaseExpiresAt: row.lease_expires_at! };
    case "succeeded":
    case "dead":
    case "cancelled":
      return { ...fields, status: row.status, finishedAt: row.finished_at!, leaseExpiresAt: null };
    default:
      return { ...fields, status: row.status, finishedAt: null, leaseExpiresAt: null };
  }
}
