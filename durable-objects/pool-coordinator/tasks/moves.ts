/**
 * Tasks moving between shards of a pool when one drains. The draining shard takes each task that is not leased
 * and holds no dependency out of its queue and into `moves_out` in one transaction; the target adopts it, keeping
 * its id (an adopted id is ignored the second time, so a retried hand-over cannot duplicate it); then the source
 * replaces the outbox row with a forwarding record in `moved`, which answers lookups by the old id until it is
 * purged with the task's retention. Nothing is lost in between: the task is always in the source's tasks, its
 * outbox, or the target's tasks.
 */
import type { CacheFill } from "../../../contract/records.ts";
import type { MovingTask } from "../../../contract/shard-rpc.ts";
import type { TaskContext } from "./context.ts";
import type { TaskRow } from "./rows.ts";

/** Moves up to `limit` movable tasks into the outbox, spread over `targets` in turn. Answers how many. */
export function exportMovable(ctx: TaskContext, targets: readonly number[], limit: number, now: number): number {
  if (targets.length === 0) return 0;
  const rows = ctx.sql
    .exec<TaskRow>(
      `SELECT * FROM tasks WHERE status IN ('queued', 'waiting') AND pending_deps = 0
         AND NOT EXISTS (SELECT 1 FROM task_deps WHERE dep_seq = tasks.seq) ORDER BY seq LIMIT ?`,
      limit,
    )
    .toArray();
  rows.forEach((row, i) => {
    const task: MovingTask = {
      id: row.id,
      tenant: row.tenant,
      type: row.type,
      // A held task is otherwise ready: the target's gates look at it again.
      status: row.held === 1 ? "queued" : (row.status as "queued" | "waiting"),
      priority: row.priority,
      payload: row.payload,
      attempts: row.attempts,
      maxAttempts: row.max_attempts,
      timeoutMs: row.timeout_ms,
      idempotencyKey: row.idempotency_key,
      dependsOn: row.depends_on,
      error: row.error,
      agentId: row.agent_id,
      runAfter: row.run_after,
      createdAt: row.created_at,
      requires: ctx.lanes.get(row.lane).requires,
      ...(row.fairness_key ? { fairnessKey: row.fairness_key as string } : {}),
      ...(row.concurrency_key ? { concurrencyKey: row.concurrency_key as string } : {}),
      ...(row.rate_key ? { rateLimitKey: row.rate_key as string } : {}),
    };
    // A cacheable task takes what its success must fill with it (cache/fills.ts).
    const fill = ctx.sql.exec<{ fill: string }>("SELECT fill FROM cache_fills WHERE task_id = ?", row.id).toArray()[0];
    if (fill) {
      task.cache = JSON.parse(fill.fill) as CacheFill;
      ctx.sql.exec("DELETE FROM cache_fills WHERE task_id = ?", row.id);
    }
    ctx.sql.exec("DELETE FROM tasks WHERE seq = ?", row.seq);
    ctx.sql.exec("INSERT INTO moves_out (id, target, task, at) VALUES (?, ?, ?, ?)", row.id, targets[i % targets.length]!, JSON.stringify(task), now);
    ctx.moves.move("move_out", row, row.status, null);
  });
  return rows.length;
}

/** What waits in the outbox, by target, at most `limit` tasks. */
export function outbox(ctx: TaskContext, limit: number): Map<number, MovingTask[]> {
  const out = new Map<number, MovingTask[]>();
  for (const { target, task } of ctx.sql.exec<{ target: number; task: string }>("SELECT target, task FROM moves_out ORDER BY at, id LIMIT ?", limit)) {
    const list = out.get(target);
    const parsed = JSON.parse(task) as MovingTask;
    if (list) list.push(parsed);
    else out.set(target, [parsed]);
  }
  return out;
}

export function outboxSize(ctx: TaskContext): number {
  return ctx.sql.exec<{ n: number }>("SELECT count(*) AS n FROM moves_out").one().n;
}

/** The target has these tasks now: forwarding records replace their outbox rows. */
export function handedOver(ctx: TaskContext, ids: readonly string[], now: number): void {
  ctx.sql.exec(
    "INSERT OR REPLACE INTO moved (id, shard, at) SELECT id, target, ?2 FROM moves_out WHERE id IN (SELECT value FROM json_each(?1))",
    JSON.stringify(ids),
    now,
  );
  ctx.sql.exec("DELETE FROM moves_out WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(ids));
}

/** Where a task that is not here went: the shard of its forwarding record or of its outbox row; null if neither. */
export function movedTo(ctx: TaskContext, id: string): { shard: number; pending: boolean } | null {
  const moved = ctx.sql.exec<{ shard: number }>("SELECT shard FROM moved WHERE id = ?", id).toArray()[0];
  if (moved) return { shard: moved.shard, pending: false };
  const out = ctx.sql.exec<{ target: number }>("SELECT target FROM moves_out WHERE id = ?", id).toArray()[0];
  return out ? { shard: out.target, pending: true } : null;
}

/**
 * Takes tasks another shard hands over, with their ids, as they were there. An id this shard already has is
 * skipped (a hand-over retried after a lost answer). Answers how many were new.
 */
export function adopt(ctx: TaskContext, tasks: readonly MovingTask[], now: number): number {
  let adopted = 0;
  for (const t of tasks) {
    if (ctx.row(t.id)) continue;
    const lane = ctx.lanes.resolve(t.tenant, t.requires);
    const insert = (key: string | null) =>
      ctx.sql.exec<TaskRow>(
        `INSERT OR IGNORE INTO tasks (id, lane, tenant, type, status, priority, payload, attempts, max_attempts, timeout_ms,
           idempotency_key, depends_on, pending_deps, error, agent_id, run_after, timer_at, created_at, updated_at,
           fairness_key, concurrency_key, rate_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        t.id,
        lane.id,
        t.tenant,
        t.type,
        t.status,
        t.priority,
        t.payload,
        t.attempts,
        t.maxAttempts,
        t.timeoutMs,
        key,
        t.dependsOn,
        t.error,
        t.agentId,
        t.runAfter,
        t.status === "waiting" ? t.runAfter : null,
        t.createdAt,
        now,
        t.fairnessKey ?? "",
        t.concurrencyKey ?? "",
        t.rateLimitKey ?? "",
      );
    let row = insert(t.idempotencyKey).toArray()[0];
    // Another task of the tenant holds the same key here (a race the key index lost): the task is kept, not lost.
    if (!row) {
      console.warn(`task ${t.id}: idempotency key already used on this shard; adopted without it`);
      row = insert(null).toArray()[0];
    }
    if (!row) continue;
    if (t.cache) ctx.sql.exec("INSERT OR REPLACE INTO cache_fills (task_id, type, fill) VALUES (?, ?, ?)", t.id, t.type, JSON.stringify(t.cache));
    ctx.moves.move("move_in", row, null, t.status);
    if (t.status === "waiting") ctx.timer(t.runAfter);
    adopted++;
  }
  return adopted;
}

/** Forwarding records older than the retention: their tasks are purged wherever they went. */
export function purgeForwarding(ctx: TaskContext, now: number, limit: number): number {
  const cursor = ctx.sql.exec("DELETE FROM moved WHERE id IN (SELECT id FROM moved WHERE at <= ? ORDER BY at LIMIT ?)", now - ctx.opts.retentionMs(), limit);
  cursor.toArray();
  return cursor.rowsWritten;
}

export function nextForwardingPurge(ctx: TaskContext): number | null {
  const at = ctx.sql.exec<{ at: number | null }>("SELECT min(at) AS at FROM moved").one().at;
  return at === null ? null : at + ctx.opts.retentionMs();
}
