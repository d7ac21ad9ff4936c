/**
 * A tenant's registry of runs (the WorkflowCoordinator named `tenant:<tenant>`): which run an idempotency key
 * started, and the listing of GET /v1/workflows (newest first, by status), kept current by the runs themselves.
 */
import type { WorkflowListRow, WorkflowStatus } from "../../contract/workflows.ts";

export class RunRegistry {
  constructor(private readonly sql: SqlStorage) {}

  /** The run this key names, or `id` (now registered under it). */
  claim(id: string, idempotencyKey: string | null, now: number): { id: string; created: boolean } {
    if (idempotencyKey !== null) {
      const known = this.sql.exec<{ id: string }>("SELECT id FROM runs WHERE idempotency_key = ?", idempotencyKey).toArray()[0];
      if (known) return { id: known.id, created: false };
    }
    this.sql.exec("INSERT OR IGNORE INTO runs (id, status, created_at, idempotency_key) VALUES (?, 'running', ?, ?)", id, now, idempotencyKey);
    return { id, created: true };
  }

  setStatus(id: string, status: WorkflowStatus): void {
    this.sql.exec("UPDATE runs SET status = ? WHERE id = ?", status, id);
  }

  /** Newest first; the cursor is the last row's `<createdAt>.<id>`. */
  list(status: WorkflowStatus | null, limit: number, cursor: string | null): { rows: WorkflowListRow[]; cursor: string | null } {
    const [at, after] = cursor ? [Number(cursor.split(".")[0]), cursor.slice(cursor.indexOf(".") + 1)] : [Number.MAX_SAFE_INTEGER, "\uffff"];
    const rows = this.sql
      .exec<{ id: string; status: WorkflowStatus; created_at: number }>(
        "SELECT id, status, created_at FROM runs WHERE (? IS NULL OR status = ?) AND (created_at < ? OR (created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?",
        status,
        status,
        at,
        at,
        after,
        limit + 1,
      )
      .toArray();
    const page = rows.slice(0, limit).map((r) => ({ id: r.id, status: r.status, createdAt: r.created_at }));
    const last = page[page.length - 1];
    return { rows: page, cursor: rows.length > limit && last ? `${last.createdAt}.${last.id}` : null };
  }
}
