import { isFinal, type Principal, type TaskStatus } from "../../../contract/records.ts";
import type { TaskContext } from "./context.ts";
import { waitFor } from "./dependencies.ts";
import type { TaskRow } from "./rows.ts";

/** Dead tasks back to the queue with attempts reset; `ids` null means every dead task the caller may see. */
export function redrive(
  ctx: TaskContext,
  principal: Principal,
  ids: readonly string[] | null,
  now: number,
  limit: number,
  afterSeq = 0,
): { redriven: number; skipped: string[]; more: boolean; lastSeq: number } {
  let rows: TaskRow[];
  if (ids === null) {
    rows = ctx.sql
      .exec<TaskRow>(
        principal.allTenants
          ? "SELECT * FROM tasks WHERE status = 'dead' AND seq > ? ORDER BY seq LIMIT ?"
          : "SELECT * FROM tasks WHERE status = 'dead' AND seq > ? AND tenant = ? ORDER BY seq LIMIT ?",
        ...(principal.allTenants ? [afterSeq, limit + 1] : [afterSeq, principal.tenant, limit + 1]),
      )
      .toArray();
  } else {
    rows = [];
    // An id named twice is one task: requeued once (twice would count it twice).
    for (const id of new Set(ids)) {
      const row = ctx.row(id);
      if (row && (principal.allTenants || row.tenant === principal.tenant) && row.status === "dead") rows.push(row);
    }
    rows.sort((a, b) => a.seq - b.seq);
  }
  const more = ids === null && rows.length > limit;
  let redriven = 0;
  const skipped: string[] = ids === null ? [] : ids.filter((id) => !rows.some((r) => r.id === id));
  for (const row of rows.slice(0, limit)) {
    if (requeue(ctx, row, now)) redriven++;
    else skipped.push(row.id);
  }
  ctx.stats.count("redriven", redriven);
  return { redriven, skipped, more, lastSeq: rows.slice(0, limit).reduce((m, r) => Math.max(m, r.seq), afterSeq) };
}

/** A dead task made new: its unfinished dependencies are waited for again; a dead or cancelled one forbids it. */
function requeue(ctx: TaskContext, row: TaskRow, now: number): boolean {
  const deps: TaskRow[] = [];
  for (const depId of new Set(JSON.parse(row.depends_on) as string[])) {
    const dep = ctx.row(depId);
    // A purged dependency finished long ago; it can no longer hold the task back.
    if (!dep) continue;
    if (dep.status === "dead" || dep.status === "cancelled") return false;
    if (!isFinal(dep.status)) deps.push(dep);
  }
  const status: TaskStatus = deps.length > 0 ? "waiting" : "queued";
  ctx.sql.exec(
    `UPDATE tasks SET status = ?1, attempts = 0, pending_deps = ?2, error = NULL, result = NULL, agent_id = NULL,
       run_after = NULL, timer_at = NULL, finished_at = NULL, updated_at = ?3 WHERE seq = ?4`,
    status,
    deps.length,
    now,
    row.seq,
  );
  waitFor(ctx, row.seq, deps);
  ctx.moves.move("redrive", row, row.status, status);
  return true;
}
