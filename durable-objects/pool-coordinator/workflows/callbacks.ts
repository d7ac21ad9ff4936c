/**
 * The workflow callbacks' outbox in a pool shard (docs/workflows.md): a task that belongs to a workflow step
 * (TaskInput.workflow) leaves a row here in its submit's transaction; when it reaches a final status the same
 * transaction that finished it writes its end into the row and makes it due; after the commit the notifier
 * (notifier.ts) reports the end to the run's WorkflowCoordinator and deletes the row once acknowledged. A report
 * that fails waits with backoff on the "workflows" timer kind, and is tried until it is acknowledged.
 */
import type { FinalStatus, TaskRecord } from "../../../contract/records.ts";
import type { WorkflowRef, WorkflowTaskEnd } from "../../../contract/workflows.ts";

export const WORKFLOW_CALLBACKS_MIGRATION = `
  CREATE TABLE workflow_callbacks (
    task_id TEXT PRIMARY KEY,
    ref TEXT NOT NULL,
    task_end TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX workflow_callbacks_due ON workflow_callbacks (next_at) WHERE next_at IS NOT NULL;
`;

/** A report taken by the notifier counts as under way this long; past it (the object restarted) it is taken again. */
export const CALLBACK_LEASE_MS = 60_000;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 300_000;

export interface CallbackJob {
  taskId: string;
  end: WorkflowTaskEnd;
}

export class WorkflowCallbacks {
  /** Whether the notifier has due rows to look at after this commit. */
  due = false;
  private readonly finished: { id: string; status: FinalStatus }[] = [];
  private known: boolean | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly record: (id: string) => TaskRecord | null,
    private readonly setTimer: (at: number) => void,
  ) {}

  /** Inside the submit's transaction. */
  submitted(taskId: string, ref: WorkflowRef): void {
    this.sql.exec("INSERT OR IGNORE INTO workflow_callbacks (task_id, ref) VALUES (?, ?)", taskId, JSON.stringify(ref));
    this.known = true;
  }

  noteFinished(id: string, status: FinalStatus): void {
    if (this.known === null) this.known = this.sql.exec("SELECT 1 FROM workflow_callbacks LIMIT 1").toArray().length > 0;
    if (this.known) this.finished.push({ id, status });
  }

  /** At the end of the transaction that finished them: the ends of workflow tasks become due now. */
  flush(now: number): void {
    if (this.known === false) this.known = null;
    if (this.finished.length === 0) return;
    for (const { id, status } of this.finished.splice(0)) {
      const row = this.sql.exec<{ ref: string }>("SELECT ref FROM workflow_callbacks WHERE task_id = ? AND task_end IS NULL", id).toArray()[0];
      const task = row ? this.record(id) : null;
      if (!row || !task) continue;
      const end: WorkflowTaskEnd = {
        ref: JSON.parse(row.ref) as WorkflowRef,
        taskId: id,
        tenant: task.tenant,
        status,
        result: task.result,
        error: task.error,
        agentId: task.agentId,
        attempts: task.attempts,
      };
      this.sql.exec("UPDATE workflow_callbacks SET task_end = ?, next_at = ? WHERE task_id = ?", JSON.stringify(end), now, id);
      this.due = true;
    }
  }

  discard(): void {
    this.finished.length = 0;
    this.known = null;
  }

  /** The earliest due report (the "workflows" timer kind). */
  next(): number | null {
    if (this.known === false) return null;
    return this.sql.exec<{ at: number | null }>("SELECT min(next_at) AS at FROM workflow_callbacks WHERE next_at IS NOT NULL").one().at;
  }

  /** Up to `limit` due reports, each marked under way for `CALLBACK_LEASE_MS`. */
  take(now: number, limit: number): CallbackJob[] {
    const rows = this.sql
      .exec<{ task_id: string; task_end: string }>("SELECT task_id, task_end FROM workflow_callbacks WHERE next_at IS NOT NULL AND next_at <= ? ORDER BY next_at LIMIT ?", now, limit)
      .toArray();
    for (const r of rows) this.sql.exec("UPDATE workflow_callbacks SET next_at = ? WHERE task_id = ?", now + CALLBACK_LEASE_MS, r.task_id);
    return rows.map((r) => ({ taskId: r.task_id, end: JSON.parse(r.task_end) as WorkflowTaskEnd }));
  }

  /** Acknowledged ones leave; failed ones wait with backoff (never given up: a run waits for every end). */
  settle(acked: readonly string[], failed: readonly string[], now: number): void {
    for (const id of acked) this.sql.exec("DELETE FROM workflow_callbacks WHERE task_id = ?", id);
    for (const id of failed) {
      const row = this.sql.exec<{ attempts: number }>("SELECT attempts FROM workflow_callbacks WHERE task_id = ?", id).toArray()[0];
      if (!row) continue;
      const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** row.attempts);
      this.sql.exec("UPDATE workflow_callbacks SET attempts = ?, next_at = ? WHERE task_id = ?", row.attempts + 1, now + delay, id);
      this.setTimer(now + delay);
    }
  }

  /** Reports not yet acknowledged (for tests and stats). */
  pending(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM workflow_callbacks WHERE task_end IS NOT NULL").one().n;
  }
}
