/**
 * Dependencies between tasks of a shard: `task_deps` holds the unfinished ones only (a row goes when its
 * dependency ends). A task finishing settles its dependents: one fewer to wait for when it succeeded, dead when it
 * did not, transitively and without recursion.
 */
import type { FinalStatus, TaskError } from "../../../contract/records.ts";
import type { TaskContext } from "./context.ts";
import type { TaskRow } from "./rows.ts";
import type { TaskTransition } from "./transitions.ts";

export function dependencyError(dep: TaskRow): TaskError {
  return { message: `dependency ${dep.id} ended ${dep.status}`, code: "dependency_failed", dependency: dep.id };
}

/** The task `seq` waits for these unfinished tasks. */
export function waitFor(ctx: TaskContext, seq: number, deps: readonly TaskRow[]): void {
  for (const dep of deps) ctx.sql.exec("INSERT OR IGNORE INTO task_deps (dep_seq, task_seq) VALUES (?, ?)", dep.seq, seq);
}

/** One of a waiting task's dependencies succeeded: one fewer to wait for, and queued once none is left. */
export function dependencySucceeded(ctx: TaskContext, seq: number, now: number): void {
  const dependent = ctx.rowBySeq(seq);
  const pending = dependent.pending_deps - 1;
  const ready = pending === 0 && (dependent.run_after === null || dependent.run_after <= now);
  ctx.sql.exec(
    "UPDATE tasks SET pending_deps = ?1, status = ?2, timer_at = ?3, updated_at = ?4 WHERE seq = ?5",
    pending,
    ready ? "queued" : "waiting",
    ready || dependent.run_after === null ? null : dependent.run_after,
    now,
    dependent.seq,
  );
  ctx.moves.move("wake", dependent, dependent.status, ready ? "queued" : "waiting");
  if (!ready) ctx.timer(dependent.run_after);
}

/** The dependents of tasks that just succeeded move on (rare: most tasks have no dependents). */
export function dependenciesSucceeded(ctx: TaskContext, seqs: readonly number[], now: number): void {
  const dependents = ctx.sql
    .exec<{ dep_seq: number; task_seq: number }>("DELETE FROM task_deps WHERE dep_seq IN (SELECT value FROM json_each(?)) RETURNING dep_seq, task_seq", JSON.stringify(seqs))
    .toArray()
    .sort((a, b) => a.task_seq - b.task_seq || a.dep_seq - b.dep_seq);
  for (const { task_seq } of dependents) dependencySucceeded(ctx, task_seq, now);
}

interface Finish {
  row: TaskRow;
  transition: TaskTransition;
  status: FinalStatus;
  result?: string | null;
  error?: TaskError | null;
}

/** Moves a task to a final status and settles every task that waited on it, transitively. Answers the first task. */
export function finish(ctx: TaskContext, first: Finish, now: number): TaskRow {
  const retention = ctx.opts.retentionMs();
  const work: Finish[] = [first];
  let answer: TaskRow | null = null;
  while (work.length > 0) {
    const { row, transition, status, result = null, error = null } = work.pop()!;
    const updated = ctx.sql
      .exec<TaskRow>(
        `UPDATE tasks SET status = ?1, result = coalesce(?2, result),
           error = CASE WHEN ?1 = 'succeeded' THEN NULL ELSE coalesce(?3, error) END, lease_token = NULL,
           lease_expires_at = NULL, pending_deps = 0, finished_at = ?4, timer_at = ?5, updated_at = ?4
         WHERE seq = ?6 RETURNING *`,
        status,
        result,
        error === null ? null : JSON.stringify(error),
        now,
        now + retention,
        row.seq,
      )
      .one();
    answer ??= updated;
    ctx.moves.move(transition, row, row.status, status);
    ctx.timer(now + retention);
    ctx.stats.count(status, 1);
    // Only a waiting task can still be waiting on dependencies of its own.
    if (row.status === "waiting") ctx.sql.exec("DELETE FROM task_deps WHERE task_seq = ?", row.seq);
    const dependentSeqs = ctx.sql
      .exec<{ task_seq: number }>("DELETE FROM task_deps WHERE dep_seq = ? RETURNING task_seq", row.seq)
      .toArray()
      .map((r) => r.task_seq)
      .sort((a, b) => a - b);
    for (const seq of dependentSeqs) {
      if (status === "succeeded") {
        dependencySucceeded(ctx, seq, now);
        continue;
      }
      work.push({ row: ctx.rowBySeq(seq), transition: "dependency_failed", status: "dead", error: dependencyError(updated) });
    }
  }
  return answer!;
}
