/**
 * The outbox of R2 deletes in a pool shard (docs/payloads.md). A task whose payload or result is kept in R2 leaves
 * its objects' keys here in the transaction that purges it (tasks/timers.ts), as does a result sealed for a
 * completion that was refused; after the commit the runner (runner.ts) deletes the objects and the rows. A delete
 * that fails is tried again on the "blobs" timer kind with backoff, and given up (counted) after
 * `MAX_DELETE_ATTEMPTS`: the object is then an orphan for the bucket's lifecycle rule, never a task's problem.
 */

export const BLOB_DELETES_MIGRATION = `
  CREATE TABLE blob_deletes (
    key TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX blob_deletes_due ON blob_deletes (next_at);
`;

export const MAX_DELETE_ATTEMPTS = 10;
/** A delete taken by the runner counts as under way this long; past it (the object restarted) it is taken again. */
export const DELETE_LEASE_MS = 60_000;
const RETRY_BASE_MS = 5_000;
const RETRY_MAX_MS = 3_600_000;

export class BlobDeletes {
  /** Whether the runner has rows to look at after this commit (a rolled-back add leaves it set: harmless). */
  due = false;
  private readonly sql: SqlStorage;
  private readonly timer: (at: number) => void;

  /** `timer`: a deadline a change set (the alarm must be no later). */
  constructor(sql: SqlStorage, timer: (at: number) => void) {
    this.sql = sql;
    this.timer = timer;
  }

  /** Inside a transaction: these objects are deleted once it commits (or at `at`, if later). */
  add(keys: readonly string[], at: number): void {
    if (keys.length === 0) return;
    this.sql.exec("INSERT OR IGNORE INTO blob_deletes (key, next_at) SELECT value, ? FROM json_each(?)", at, JSON.stringify(keys));
    this.due = true;
    this.timer(at);
  }

  /** The earliest due delete (the "blobs" timer kind). */
  next(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(next_at) AS at FROM blob_deletes").one().at;
  }

  /** Up to `limit` due keys, each marked under way for `DELETE_LEASE_MS`. */
  take(now: number, limit: number): string[] {
    const keys = this.sql.exec<{ key: string }>("SELECT key FROM blob_deletes WHERE next_at <= ? ORDER BY next_at LIMIT ?", now, limit).toArray().map((r) => r.key);
    if (keys.length === 0) return keys;
    this.sql.exec("UPDATE blob_deletes SET next_at = ? WHERE key IN (SELECT value FROM json_each(?))", now + DELETE_LEASE_MS, JSON.stringify(keys));
    this.timer(now + DELETE_LEASE_MS);
    return keys;
  }

  /** Deleted ones leave; failed ones wait with backoff, or are given up. Answers how many were given up. */
  settle(deleted: readonly string[], failed: readonly string[], now: number): number {
    this.sql.exec("DELETE FROM blob_deletes WHERE key IN (SELECT value FROM json_each(?))", JSON.stringify(deleted));
    let givenUp = 0;
    for (const key of failed) {
      const row = this.sql.exec<{ attempts: number }>("SELECT attempts FROM blob_deletes WHERE key = ?", key).toArray()[0];
      if (!row) continue;
      const attempts = row.attempts + 1;
      if (attempts >= MAX_DELETE_ATTEMPTS) {
        this.sql.exec("DELETE FROM blob_deletes WHERE key = ?", key);
        givenUp++;
        continue;
      }
      const at = now + Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (attempts - 1));
      this.sql.exec("UPDATE blob_deletes SET attempts = ?, next_at = ? WHERE key = ?", attempts, at, key);
      this.timer(at);
    }
    return givenUp;
  }
}
