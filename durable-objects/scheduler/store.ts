/**
 * A tenant's schedules and their runs in the Scheduler's SQLite storage (docs/schedules.md). Each method runs inside
 * the caller's transaction. A slot is claimed (a `pending` run, the schedule's cursor moved past it) in the same
 * transaction that decides to fire it; the submission happens after, and a pending run is retried until it is
 * `submitted` or `skipped`, with an idempotency key of its own, so a slot runs once whatever restarts in between.
 */
import { ApiError } from "../../contract/errors.ts";
import type { Principal } from "../../contract/records.ts";
import { RECENT_RUNS, type RunStatus, type ScheduleRun, type ScheduleSpec, type ScheduleTarget, type ScheduleView } from "../../contract/schedules.ts";
import { nextSlot, planDue } from "../../lib/schedules/cron.ts";

interface ScheduleRow {
  id: string;
  tenant: string;
  name: string | null;
  cron: string;
  timezone: string;
  target: string;
  overlap: "skip" | "allow";
  catch_up: "skip" | "one";
  principal: string;
  paused: number;
  cursor: number;
  next_run_at: number | null;
  last_run_at: number | null;
  created_at: number;
  [column: string]: SqlStorageValue;
}

interface RunRow {
  schedule_id: string;
  slot: number;
  trigger: number;
  status: RunStatus;
  reason: string | null;
  task_id: string | null;
  workflow_id: string | null;
  at: number;
  attempts: number;
  retry_at: number | null;
  [column: string]: SqlStorageValue;
}

/** A run to submit: its schedule's target and creator, and the idempotency key of the slot. */
export interface PendingRun {
  scheduleId: string;
  slot: number;
  trigger: boolean;
  /** When it was claimed. */
  at: number;
  attempts: number;
  key: string;
  target: ScheduleTarget;
  overlap: "skip" | "allow";
  tenant: string;
  principal: Principal;
}

/** How many due schedules one alarm claims; more are due again at once. */
export const CLAIM_BATCH = 100;

export const runKey = (scheduleId: string, slot: number, trigger: boolean) => `schedule:${scheduleId}:${trigger ? "t" : ""}${slot}`;

const notFound = () => new ApiError("not_found", "no such schedule");

export class ScheduleStore {
  constructor(private readonly sql: SqlStorage) {}

  private row(id: string): ScheduleRow | null {
    return this.sql.exec<ScheduleRow>("SELECT * FROM schedules WHERE id = ?", id).toArray()[0] ?? null;
  }

  private must(id: string): ScheduleRow {
    const row = this.row(id);
    if (!row) throw notFound();
    return row;
  }

  exists(id: string): boolean {
    return this.row(id) !== null;
  }

  create(id: string, tenant: string, spec: ScheduleSpec, principal: Principal, now: number): void {
    this.sql.exec(
      "INSERT INTO schedules (id, tenant, name, cron, timezone, target, overlap, catch_up, principal, paused, cursor, next_run_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
      id,
      tenant,
      spec.name,
      spec.cron,
      spec.timezone,
      JSON.stringify(spec.target),
      spec.overlap,
      spec.catchUp,
      JSON.stringify(principal),
      now + 1,
      nextSlot(spec.cron, spec.timezone, now),
      now,
    );
  }

  /** Pausing stops the cron slots (a trigger still runs); resuming runs the slots from now on, none missed meanwhile. */
  setPaused(id: string, paused: boolean, now: number): void {
    const row = this.must(id);
    if (Boolean(row.paused) === paused) return;
    if (paused) this.sql.exec("UPDATE schedules SET paused = 1 WHERE id = ?", id);
    else this.sql.exec("UPDATE schedules SET paused = 0, cursor = ?, next_run_at = ? WHERE id = ?", now, nextSlot(row.cron, row.timezone, now - 1), id);
  }

  delete(id: string): void {
    this.must(id);
    this.sql.exec("DELETE FROM runs WHERE schedule_id = ?", id);
    this.sql.exec("DELETE FROM schedules WHERE id = ?", id);
  }

  /** Claims the due slots of up to `limit` schedules; answers how many schedules were due. */
  claimDue(now: number, limit = CLAIM_BATCH): number {
    const due = this.sql.exec<ScheduleRow>("SELECT * FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at LIMIT ?", now, limit).toArray();
    for (const row of due) {
      const plan = planDue(row.cron, row.timezone, row.cursor, now, row.catch_up);
      if (plan.fire !== null) this.claim(row.id, plan.fire, false, now);
      if (plan.missed !== null) this.record(row.id, plan.missed, false, "skipped", "missed", now);
      this.sql.exec("UPDATE schedules SET cursor = ?, next_run_at = ? WHERE id = ?", now + 1, plan.next, row.id);
    }
    return due.length;
  }

  /** A run now (POST .../trigger); answers its slot. The cron slots are left as they are. */
  trigger(id: string, now: number): number {
    this.must(id);
    let slot = now;
    while (this.sql.exec("SELECT 1 FROM runs WHERE schedule_id = ? AND trigger = 1 AND slot = ?", id, slot).toArray().length > 0) slot++;
    this.claim(id, slot, true, now);
    return slot;
  }

  private claim(id: string, slot: number, trigger: boolean, now: number): void {
    this.sql.exec("INSERT OR IGNORE INTO runs (schedule_id, slot, trigger, status, at, retry_at) VALUES (?, ?, ?, 'pending', ?, ?)", id, slot, trigger ? 1 : 0, now, now);
    this.sql.exec("UPDATE schedules SET last_run_at = ? WHERE id = ?", now, id);
  }

  private record(id: string, slot: number, trigger: boolean, status: RunStatus, reason: string | null, now: number): void {
    this.sql.exec("INSERT OR IGNORE INTO runs (schedule_id, slot, trigger, status, reason, at) VALUES (?, ?, ?, ?, ?, ?)", id, slot, trigger ? 1 : 0, status, reason, now);
    this.prune(id);
  }

  /** The pending runs whose (re)try is due, oldest first. */
  pending(now: number, limit: number): PendingRun[] {
    const rows = this.sql.exec<RunRow>("SELECT * FROM runs WHERE status = 'pending' AND retry_at <= ? ORDER BY retry_at LIMIT ?", now, limit).toArray();
    return rows.flatMap((r) => {
      const s = this.row(r.schedule_id);
      if (!s) return [];
      const trigger = r.trigger === 1;
      const principal = JSON.parse(s.principal) as Principal;
      return [{ scheduleId: s.id, slot: r.slot, trigger, at: r.at, attempts: r.attempts, key: runKey(s.id, r.slot, trigger), target: JSON.parse(s.target) as ScheduleTarget, overlap: s.overlap, tenant: s.tenant, principal }];
    });
  }

  /**
   * What overlap `skip` waits for: the schedule's latest run claimed before `run` that went out or is still going out
   * (`pending`: another run not yet submitted, which counts as not final), with its task or workflow.
   */
  previous(run: PendingRun): { pending: boolean; taskId: string | null; workflowId: string | null } | null {
    const row = this.sql
      .exec<RunRow>(
        "SELECT * FROM runs WHERE schedule_id = ? AND status IN ('submitted', 'pending') AND (at, slot, trigger) < (?, ?, ?) ORDER BY at DESC, slot DESC, trigger DESC LIMIT 1",
        run.scheduleId,
        run.at,
        run.slot,
        run.trigger ? 1 : 0,
      )
      .toArray()[0];
    return row ? { pending: row.status === "pending", taskId: row.task_id, workflowId: row.workflow_id } : null;
  }

  /** A pending run's end: submitted (with its task or workflow) or skipped (with why). A run already settled stays. */
  settle(run: PendingRun, status: "submitted" | "skipped", ids: { taskId?: string; workflowId?: string }, reason: string | null): void {
    this.sql.exec(
      "UPDATE runs SET status = ?, task_id = ?, workflow_id = ?, reason = ?, retry_at = NULL WHERE schedule_id = ? AND trigger = ? AND slot = ? AND status = 'pending'",
      status,
      ids.taskId ?? null,
      ids.workflowId ?? null,
      reason,
      run.scheduleId,
      run.trigger ? 1 : 0,
      run.slot,
    );
    this.prune(run.scheduleId);
  }

  /** A submission that failed for a reason worth retrying: the run waits until `retryAt`. */
  retryLater(run: PendingRun, retryAt: number): void {
    this.sql.exec("UPDATE runs SET attempts = attempts + 1, retry_at = ? WHERE schedule_id = ? AND trigger = ? AND slot = ? AND status = 'pending'", retryAt, run.scheduleId, run.trigger ? 1 : 0, run.slot);
  }

  /** Keeps the last {@link RECENT_RUNS} settled runs of a schedule (a pending one is never dropped). */
  private prune(id: string): void {
    this.sql.exec(
      "DELETE FROM runs WHERE schedule_id = ? AND status != 'pending' AND (trigger, slot) NOT IN (SELECT trigger, slot FROM runs WHERE schedule_id = ? ORDER BY at DESC, slot DESC LIMIT ?)",
      id,
      id,
      RECENT_RUNS,
    );
  }

  /** The earliest time the alarm is needed: a schedule's next slot or a pending run's retry. */
  nextDeadline(): number | null {
    const s = this.sql.exec<{ at: number | null }>("SELECT MIN(next_run_at) AS at FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL").one().at;
    const r = this.sql.exec<{ at: number | null }>("SELECT MIN(retry_at) AS at FROM runs WHERE status = 'pending'").one().at;
    if (s === null) return r;
    return r === null ? s : Math.min(s, r);
  }

  view(id: string): ScheduleView {
    return this.present(this.must(id));
  }

  run(id: string, slot: number, trigger: boolean): ScheduleRun | null {
    const row = this.sql.exec<RunRow>("SELECT * FROM runs WHERE schedule_id = ? AND trigger = ? AND slot = ?", id, trigger ? 1 : 0, slot).toArray()[0];
    return row ? presentRun(row) : null;
  }

  /** Oldest first; the cursor is the last row's `<createdAt>.<id>`. */
  list(limit: number, cursor: string | null): { schedules: ScheduleView[]; cursor: string | null } {
    const [at, after] = cursor ? [Number(cursor.split(".")[0]), cursor.slice(cursor.indexOf(".") + 1)] : [-1, ""];
    const rows = this.sql
      .exec<ScheduleRow>("SELECT * FROM schedules WHERE created_at > ? OR (created_at = ? AND id > ?) ORDER BY created_at, id LIMIT ?", at, at, after, limit + 1)
      .toArray();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { schedules: page.map((r) => this.present(r)), cursor: rows.length > limit && last ? `${last.created_at}.${last.id}` : null };
  }

  private present(row: ScheduleRow): ScheduleView {
    const target = JSON.parse(row.target) as ScheduleTarget;
    const runs = this.sql.exec<RunRow>("SELECT * FROM runs WHERE schedule_id = ? ORDER BY at DESC, slot DESC LIMIT ?", row.id, RECENT_RUNS).toArray();
    return {
      id: row.id,
      name: row.name,
      tenant: row.tenant,
      cron: row.cron,
      timezone: row.timezone,
      ...(target.kind === "task" ? { task: target.task } : { workflow: target.workflow }),
      overlap: row.overlap,
      catchUp: row.catch_up,
      paused: row.paused === 1,
      nextRunAt: row.paused === 1 ? null : row.next_run_at,
      lastRunAt: row.last_run_at,
      createdAt: row.created_at,
      runs: runs.map(presentRun),
    };
  }
}

function presentRun(r: RunRow): ScheduleRun {
  return { slot: r.slot, trigger: r.trigger === 1, status: r.status, reason: r.reason, taskId: r.task_id, workflowId: r.workflow_id, at: r.at };
}
