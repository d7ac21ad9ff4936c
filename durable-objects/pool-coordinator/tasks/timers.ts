import { isFinal } from "../../../contract/records.ts";
import { blobKeysOf } from "../../../lib/security/blob-refs.ts";
import { ALARM_BATCH } from "../../shared/timers.ts";
import { failAttempt } from "./attempts.ts";
import type { TaskContext } from "./context.ts";
import type { TaskRow } from "./rows.ts";

/** The earliest deadline of any task: lease expiry, delay or backoff, or the purge of a finished task. */
export function nextTimer(ctx: TaskContext): number | null {
  return ctx.sql.exec<{ at: number | null }>("SELECT min(timer_at) AS at FROM tasks WHERE timer_at IS NOT NULL").one().at;
}

/**
 * Works off up to `limit` due timers: expired leases fail their attempt, delays and backoffs end, finished
 * tasks past retention are purged (their R2 objects with them). Answers how many were handled; as many as `limit` means there may be more.
 * A timer handled is cleared or moved by its handling, so running this again finds it no more.
 */
export function runTimers(ctx: TaskContext, now: number, limit = ALARM_BATCH): number {
  const due = ctx.sql.exec<TaskRow>("SELECT * FROM tasks WHERE timer_at IS NOT NULL AND timer_at <= ? ORDER BY timer_at LIMIT ?", now, limit).toArray();
  let purged = 0;
  const released: (string | null)[] = [];
  for (const row of due) {
    if (row.status === "leased") {
      ctx.stats.count("expired", 1);
      failAttempt(ctx, row, "expired", { message: `lease expired after ${row.timeout_ms} ms`, code: "lease_expired" }, true, now);
    } else if (row.status === "waiting") {
      const ready = row.pending_deps === 0;
      ctx.sql.exec("UPDATE tasks SET status = ?1, timer_at = NULL, updated_at = ?2 WHERE seq = ?3", ready ? "queued" : "waiting", now, row.seq);
      ctx.moves.move("wake", row, row.status, ready ? "queued" : "waiting");
    } else if (isFinal(row.status)) {
      ctx.sql.exec("DELETE FROM task_deps WHERE task_seq = ?", row.seq);
      ctx.sql.exec("DELETE FROM tasks WHERE seq = ?", row.seq);
      ctx.moves.move("purge", row, row.status, null);
      released.push(row.payload, row.result);
      purged++;
    }
  }
  ctx.stats.count("purged", purged);
  // Payloads and results kept in R2 go with their tasks (blobs/deletes.ts), once this transaction commits.
  const keys = blobKeysOf(released);
  if (keys.length > 0) ctx.opts.blobsReleased(keys, now);
  return due.length;
}
