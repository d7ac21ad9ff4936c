/**
 * Concurrency and rate keys (API.md, "Workflows, fairness and schedules"; docs/scheduling.md). A task with a
 * `concurrencyKey` or a `rateLimitKey` passes its keys' gates each time it would become ready: it is queued only
 * while they have room, and otherwise waits, held (`held = 1`), first in first out per key, until a gate frees.
 *
 * - Concurrency: the key's tasks that are queued or leased count (partial index `tasks_concurrency_active`); at most
 *   the key's limit of them, so at most that many are ever leased at once. A task leaving that set releases the
 *   key's oldest held task.
 * - Rate: a sliding window per key, each lease a token that comes back `periodMs` after it was taken
 *   (`rate_leases`, written by a trigger at every lease). Leases in the window plus the key's queued tasks are at
 *   most the limit, so leases in any window of `periodMs` are at most the limit: exact within the shard. When the
 *   window is full, the key's wake-up (`rate_wakes`, a named timer kind) is when its oldest lease leaves it.
 *
 * The statements that make a task ready write `queued` as they always did; the move that notes it
 * (transitions.ts) asks {@link Gates.admit}, and a task with no room is held in the same transaction. Every read
 * and write is by index, O(log n) per task whatever is queued or held. Held in order behind a key's oldest held
 * task, a task with both keys waits while either gate is shut (head of line per key).
 */
import type { TaskStatus } from "../../../contract/records.ts";

export const GATES_MIGRATION = `
  ALTER TABLE tasks ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT '';
  ALTER TABLE tasks ADD COLUMN rate_key TEXT NOT NULL DEFAULT '';
  ALTER TABLE tasks ADD COLUMN held INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1));
  ALTER TABLE tasks ADD COLUMN debounce_key TEXT NOT NULL DEFAULT '';
  ALTER TABLE tasks ADD COLUMN debounce_until INTEGER;
  CREATE INDEX tasks_concurrency_active ON tasks (tenant, concurrency_key) WHERE concurrency_key <> '' AND status IN ('queued', 'leased');
  CREATE INDEX tasks_rate_queued ON tasks (tenant, rate_key) WHERE rate_key <> '' AND status = 'queued';
  CREATE INDEX tasks_held_by_concurrency ON tasks (tenant, concurrency_key, seq) WHERE held = 1 AND concurrency_key <> '';
  CREATE INDEX tasks_held_by_rate ON tasks (tenant, rate_key, seq) WHERE held = 1 AND rate_key <> '';
  CREATE INDEX tasks_debounce ON tasks (tenant, type, debounce_key) WHERE debounce_key <> '' AND attempts = 0 AND status IN ('waiting', 'queued');
  CREATE TABLE rate_leases (tenant TEXT NOT NULL, rkey TEXT NOT NULL, at INTEGER NOT NULL);
  CREATE INDEX rate_leases_by_key ON rate_leases (tenant, rkey, at);
  CREATE TABLE rate_wakes (tenant TEXT NOT NULL, rkey TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (tenant, rkey)) WITHOUT ROWID;
  CREATE INDEX rate_wakes_by_at ON rate_wakes (at);
  CREATE TRIGGER tasks_rate_lease AFTER UPDATE OF status ON tasks WHEN NEW.status = 'leased' AND NEW.rate_key <> '' BEGIN
    INSERT INTO rate_leases (tenant, rkey, at) VALUES (NEW.tenant, NEW.rate_key, NEW.leased_at);
  END;
`;

export interface RateLimit {
  limit: number;
  periodMs: number;
}

/** What the gates need of a task: its keys (a row of the tasks table has them). */
export interface Gated {
  seq?: number;
  tenant: string;
  concurrency_key?: string;
  rate_key?: string;
  held?: number;
}

interface HeldRow {
  [column: string]: SqlStorageValue;
  seq: number;
  id: string;
  tenant: string;
  agent_id: null;
  concurrency_key: string;
  rate_key: string;
}

export interface GateOptions {
  /** The key's concurrency limit (pool config `concurrency`), or null: unlimited. */
  concurrencyLimit: (key: string) => number | null;
  /** The key's rate limit (pool config `rateLimits`), or null: unlimited. */
  rateLimit: (key: string) => RateLimit | null;
  /** A deadline a change set: the alarm must be no later. */
  timer: (at: number | null) => void;
}

const ACTIVE = new Set<TaskStatus | null>(["queued", "leased"]);

export class Gates {
  /** The time of the operation running: set by the task store at each operation. */
  now = 0;
  /** Notes a held task's release as a move (transitions.ts), set once the moves exist. */
  released: (row: HeldRow) => void = () => {};

  constructor(
    private readonly sql: SqlStorage,
    private readonly opts: GateOptions,
  ) {}

  /** Whether a task that was just written `queued` may stay queued; otherwise it is held here and now. */
  admit(task: Gated): boolean {
    const ckey = task.concurrency_key ?? "";
    const rkey = task.rate_key ?? "";
    if (task.seq === undefined || (ckey === "" && rkey === "")) return true;
    if (this.concurrencyRoom(task.tenant, ckey, 0) && this.rateRoom(task.tenant, rkey, 0)) return true;
    this.sql.exec("UPDATE tasks SET status = 'waiting', held = 1, timer_at = NULL WHERE seq = ?", task.seq);
    if (rkey !== "") this.wakeRate(task.tenant, rkey);
    return false;
  }

  /**
   * A task moved from `from` to `to` (after any hold): a held task that leaves waiting is no longer held, and a
   * task that leaves a gate's count releases what that gate now has room for.
   */
  moved(task: Gated, from: TaskStatus | null, to: TaskStatus | null): void {
    if (task.held === 1 && to !== "waiting" && to !== null && task.seq !== undefined) this.sql.exec("UPDATE tasks SET held = 0 WHERE seq = ? AND held = 1", task.seq);
    const ckey = task.concurrency_key ?? "";
    const rkey = task.rate_key ?? "";
    if (ckey !== "" && ACTIVE.has(from) && !ACTIVE.has(to)) this.pumpConcurrency(task.tenant, ckey);
    if (rkey !== "" && from === "queued") {
      // A lease fills the window until it leaves it: the key's held tasks wake then.
      if (to === "leased") this.wakeRate(task.tenant, rkey);
      else this.pumpRate(task.tenant, rkey);
    }
  }

  /** Limits changed (pool config): every key with held tasks releases what it now has room for. */
  limitsChanged(): void {
    const keys = this.sql.exec<{ tenant: string; k: string; kind: string }>(
      `SELECT DISTINCT tenant, concurrency_key AS k, 'c' AS kind FROM tasks WHERE held = 1 AND concurrency_key <> ''
       UNION SELECT DISTINCT tenant, rate_key AS k, 'r' AS kind FROM tasks WHERE held = 1 AND rate_key <> ''`,
    ).toArray();
    for (const { tenant, k, kind } of keys) {
      if (kind === "c") this.pumpConcurrency(tenant, k);
      else this.pumpRate(tenant, k);
    }
  }

  /** The earliest rate wake-up, for the alarm. */
  nextWake(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(at) AS at FROM rate_wakes").one().at;
  }

  /** Runs up to `limit` due rate wake-ups; answers how many. */
  runWakes(now: number, limit: number): number {
    this.now = now;
    const due = this.sql.exec<{ tenant: string; rkey: string }>("SELECT tenant, rkey FROM rate_wakes WHERE at <= ? ORDER BY at LIMIT ?", now, limit).toArray();
    for (const { tenant, rkey } of due) {
      this.sql.exec("DELETE FROM rate_wakes WHERE tenant = ? AND rkey = ?", tenant, rkey);
      this.pumpRate(tenant, rkey);
    }
    return due.length;
  }

  /** Whether the key has room for `extra` more tasks than it counts now (a held task does not count yet). */
  private concurrencyRoom(tenant: string, key: string, extra: number): boolean {
    if (key === "") return true;
    const limit = this.opts.concurrencyLimit(key);
    if (limit === null) return true;
    const active = this.sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM tasks INDEXED BY tasks_concurrency_active WHERE concurrency_key <> '' AND status IN ('queued', 'leased') AND tenant = ? AND concurrency_key = ?", tenant, key)
      .one().n;
    return active + extra <= limit;
  }

  private rateRoom(tenant: string, key: string, extra: number): boolean {
    if (key === "") return true;
    const rate = this.opts.rateLimit(key);
    if (rate === null) return true;
    this.sql.exec("DELETE FROM rate_leases WHERE tenant = ? AND rkey = ? AND at <= ?", tenant, key, this.now - rate.periodMs);
    const leased = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM rate_leases WHERE tenant = ? AND rkey = ?", tenant, key).one().n;
    const queued = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks INDEXED BY tasks_rate_queued WHERE rate_key <> '' AND status = 'queued' AND tenant = ? AND rate_key = ?", tenant, key).one().n;
    return leased + queued + extra <= rate.limit;
  }

  /**
   * The key's held tasks, oldest first, queued while its gate (and the task's rate gate) has room. The rate keys
   * of the tasks it released look again afterwards: they may have room for tasks held behind these.
   */
  private pumpConcurrency(tenant: string, key: string): void {
    const touched = new Set<string>();
    for (;;) {
      const head = this.heldHead("tasks_held_by_concurrency", "concurrency_key", tenant, key);
      if (!head || !this.concurrencyRoom(tenant, key, 1)) break;
      if (!this.rateRoom(tenant, head.rate_key, 1)) {
        this.wakeRate(tenant, head.rate_key);
        break;
      }
      this.release(head);
      if (head.rate_key !== "") touched.add(head.rate_key);
    }
    for (const rkey of touched) this.pumpRate(tenant, rkey);
  }

  private pumpRate(tenant: string, key: string): void {
    for (;;) {
      const head = this.heldHead("tasks_held_by_rate", "rate_key", tenant, key);
      if (!head) {
        this.sql.exec("DELETE FROM rate_wakes WHERE tenant = ? AND rkey = ?", tenant, key);
        return;
      }
      if (!this.rateRoom(tenant, key, 1)) {
        this.wakeRate(tenant, key);
        return;
      }
      // Shut by its concurrency key: that key releases it when it frees.
      if (!this.concurrencyRoom(tenant, head.concurrency_key, 1)) return;
      this.release(head);
    }
  }

  private heldHead(index: string, column: string, tenant: string, key: string): HeldRow | undefined {
    return this.sql
      .exec<HeldRow>(
        `SELECT seq, id, tenant, agent_id, concurrency_key, rate_key FROM tasks INDEXED BY ${index}
         WHERE held = 1 AND ${column} <> '' AND tenant = ? AND ${column} = ? ORDER BY seq LIMIT 1`,
        tenant,
        key,
      )
      .toArray()[0];
  }

  private release(head: HeldRow): void {
    this.sql.exec("UPDATE tasks SET status = 'queued', held = 0, updated_at = ? WHERE seq = ?", this.now, head.seq);
    this.released(head);
  }

  /** When the key's window next has room: when its oldest lease leaves it (none: a queued task's cancel frees it). */
  private wakeRate(tenant: string, key: string): void {
    const rate = this.opts.rateLimit(key);
    if (rate === null) return;
    const oldest = this.sql.exec<{ at: number | null }>("SELECT min(at) AS at FROM rate_leases WHERE tenant = ? AND rkey = ? AND at > ?", tenant, key, this.now - rate.periodMs).one().at;
    // No lease in the window: what fills it is queued tasks, and their leaving (moved) frees it, not time.
    if (oldest === null || this.heldHead("tasks_held_by_rate", "rate_key", tenant, key) === undefined) return;
    const at = oldest + rate.periodMs;
    this.sql.exec(
      "INSERT INTO rate_wakes (tenant, rkey, at) VALUES (?1, ?2, ?3) ON CONFLICT (tenant, rkey) DO UPDATE SET at = min(at, excluded.at)",
      tenant,
      key,
      at,
    );
    this.opts.timer(at);
  }
}
