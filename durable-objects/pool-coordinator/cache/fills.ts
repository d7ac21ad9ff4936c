/**
 * The output cache's outbox in a pool shard: a cacheable task (TaskInput.cache) leaves a row here in its submit's
 * transaction; its success makes the row ready in the transaction that completed it; after the commit the filler
 * (filler.ts) writes the entry to every level and deletes the row. A fill that fails is tried again on the "cache"
 * timer kind with backoff, and given up (counted) after `MAX_FILL_ATTEMPTS`. A task that ends dead or cancelled
 * drops its row: failed tasks are never cached.
 */
import type { CacheFill, FinalStatus } from "../../../contract/records.ts";

export const CACHE_FILLS_MIGRATION = `
  CREATE TABLE cache_fills (
    task_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    fill TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX cache_fills_due ON cache_fills (next_at) WHERE next_at IS NOT NULL;
`;

export const MAX_FILL_ATTEMPTS = 5;
/** A fill taken by the filler counts as under way this long; past it (the object restarted) it is taken again. */
export const FILL_LEASE_MS = 60_000;
const RETRY_BASE_MS = 5_000;

export interface FillJob {
  taskId: string;
  type: string;
  fill: CacheFill;
}

export class CacheFills {
  /** Whether the filler has due rows to look at after this commit. */
  due = false;
  private readonly finished: { id: string; status: FinalStatus }[] = [];
  /** Whether `cache_fills` may hold anything (read once; a cacheable submit sets it). */
  private known: boolean | null = null;
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  /** Inside the submit's transaction. */
  submitted(taskId: string, type: string, fill: CacheFill): void {
    this.sql.exec("INSERT OR REPLACE INTO cache_fills (task_id, type, fill) VALUES (?, ?, ?)", taskId, type, JSON.stringify(fill));
    this.known = true;
  }

  /** Any task that finished (cheap unless cacheable tasks exist). */
  noteFinished(id: string, status: FinalStatus): void {
    if (this.known === null) this.known = this.sql.exec("SELECT 1 FROM cache_fills LIMIT 1").toArray().length > 0;
    if (this.known) this.finished.push({ id, status });
  }

  /** At the end of the transaction: successes become due now, other ends drop their rows. */
  flush(now: number): void {
    // Rows may arrive by other paths (a drain hands cacheable tasks over): "none" is looked at again next time.
    if (this.known === false) this.known = null;
    if (this.finished.length === 0) return;
    const ok = JSON.stringify(this.finished.filter((f) => f.status === "succeeded").map((f) => f.id));
    const gone = JSON.stringify(this.finished.filter((f) => f.status !== "succeeded").map((f) => f.id));
    const cursor = this.sql.exec("UPDATE cache_fills SET next_at = ? WHERE task_id IN (SELECT value FROM json_each(?))", now, ok);
    cursor.toArray();
    if (cursor.rowsWritten > 0) this.due = true;
    this.sql.exec("DELETE FROM cache_fills WHERE task_id IN (SELECT value FROM json_each(?))", gone);
    this.finished.length = 0;
  }

  discard(): void {
    this.finished.length = 0;
    this.known = null;
  }

  /** The earliest due fill (the "cache" timer kind). */
  next(): number | null {
    if (this.known === false) return null;
    return this.sql.exec<{ at: number | null }>("SELECT min(next_at) AS at FROM cache_fills WHERE next_at IS NOT NULL").one().at;
  }

  /** Up to `limit` due fills, each marked under way for `FILL_LEASE_MS`. */
  take(now: number, limit: number): FillJob[] {
    const rows = this.sql
      .exec<{ task_id: string; type: string; fill: string }>("SELECT task_id, type, fill FROM cache_fills WHERE next_at IS NOT NULL AND next_at <= ? ORDER BY next_at LIMIT ?", now, limit)
      .toArray();
    for (const r of rows) this.sql.exec("UPDATE cache_fills SET next_at = ? WHERE task_id = ?", now + FILL_LEASE_MS, r.task_id);
    return rows.map((r) => ({ taskId: r.task_id, type: r.type, fill: JSON.parse(r.fill) as CacheFill }));
  }

  /** Filled ones leave; failed ones wait with backoff, or are given up. Answers the given-up jobs. */
  settle(filled: readonly FillJob[], failed: readonly FillJob[], now: number): FillJob[] {
    for (const job of filled) this.sql.exec("DELETE FROM cache_fills WHERE task_id = ?", job.taskId);
    const givenUp: FillJob[] = [];
    for (const job of failed) {
      const row = this.sql.exec<{ attempts: number }>("SELECT attempts FROM cache_fills WHERE task_id = ?", job.taskId).toArray()[0];
      if (!row) continue;
      const attempts = row.attempts + 1;
      if (attempts >= MAX_FILL_ATTEMPTS) {
        this.sql.exec("DELETE FROM cache_fills WHERE task_id = ?", job.taskId);
        givenUp.push(job);
      } else {
        this.sql.exec("UPDATE cache_fills SET attempts = ?, next_at = ? WHERE task_id = ?", attempts, now + RETRY_BASE_MS * 2 ** (attempts - 1), job.taskId);
      }
    }
    return givenUp;
  }
}
