/** The end of an attempt that did not succeed, and cancellation: where a task goes when its lease is over. */
import { ApiError } from "../../../contract/errors.ts";
import type { Principal, TaskError, TaskRecord } from "../../../contract/records.ts";
import { afterFailedAttempt, canCancel, type FailureCause } from "../queue-rules.ts";
import type { TaskContext } from "./context.ts";
import { finish } from "./dependencies.ts";
import { visible } from "./reads.ts";
import type { TaskRow } from "./rows.ts";

/**
 * A failed attempt (reported, lease expired, agent lost): back to the queue at once when its agent was lost,
 * waiting out a backoff otherwise, or to the dead letter queue with its attempts used up or when not retryable.
 */
export function failAttempt(ctx: TaskContext, row: TaskRow, cause: FailureCause, error: TaskError, retryable: boolean, now: number): TaskRecord {
  ctx.stats.count("failed", 1);
  // A lost agent is not its own fault's measure; a reported failure or an expired lease is.
  if (cause !== "agent_lost" && row.agent_id !== null) ctx.opts.agentOutcome(row.agent_id, false, null);
  const outcome = afterFailedAttempt({
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    retryable,
    cause,
    now,
    random01: ctx.opts.random01(),
  });
  const detail: TaskError = { ...error, attempt: row.attempts };
  if (outcome.status === "dead") return ctx.record(finish(ctx, { row, transition: "fail_attempt", status: "dead", error: detail }, now));
  const runAfter = outcome.status === "waiting" ? outcome.runAfter : null;
  const updated = ctx.sql
    .exec<TaskRow>(
      `UPDATE tasks SET status = ?1, lease_token = NULL, lease_expires_at = NULL, run_after = ?2, timer_at = ?2,
         error = ?3, updated_at = ?4 WHERE seq = ?5 RETURNING *`,
      outcome.status,
      runAfter,
      JSON.stringify(detail),
      now,
      row.seq,
    )
    .one();
  const became = ctx.moves.move("fail_attempt", row, row.status, outcome.status);
  ctx.timer(runAfter);
  // Held by a concurrency or rate key on its way back to the queue: the record is read again.
  return ctx.record(became === outcome.status ? updated : ctx.rowBySeq(updated.seq));
}

/**
 * Gives back every lease an agent holds (it was deleted or lost): each counts as a failed attempt, and the
 * task goes back to the queue at once or, with its attempts used up, to the dead letter queue.
 */
export function releaseAgent(ctx: TaskContext, agentId: string, reason: string, now: number): number {
  const rows = ctx.sql.exec<TaskRow>("SELECT * FROM tasks WHERE agent_id = ? AND status = 'leased'", agentId).toArray();
  for (const row of rows) failAttempt(ctx, row, "agent_lost", { message: reason, code: "agent_lost" }, true, now);
  return rows.length;
}

/** Cancel applies to anything not yet final; a leased task's lease is revoked, its dependents die. */
export function cancel(ctx: TaskContext, principal: Principal, id: string, now: number): TaskRecord {
  const row = visible(ctx, principal, id);
  if (!canCancel(row.status)) throw new ApiError("conflict", `task ${id} is already ${row.status}`);
  return ctx.record(finish(ctx, { row, transition: "cancel", status: "cancelled" }, now));
}
