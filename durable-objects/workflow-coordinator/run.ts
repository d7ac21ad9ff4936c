/**
 * One run's state machine over its SQLite rows, synchronous (each call runs inside the object's transaction):
 * steps become runnable when their dependencies are done, a step's elements (one task, or one per forEach item)
 * are planned, submitted and finished, failures apply the run's policy, cancel and retry reset what they must.
 * What needs the network (opening results, submitting, cancelling) is read from the rows by the object (index.ts).
 */
import { ApiError } from "../../contract/errors.ts";
import type { FinalStatus, Principal } from "../../contract/records.ts";
import type { StepSpec, StepStatus, WorkflowSpec, WorkflowStatus, WorkflowTaskEnd } from "../../contract/workflows.ts";
import { descendantsOf } from "../../lib/workflows/plan.ts";

export interface RunRow {
  id: string;
  tenant: string;
  name: string | null;
  spec: WorkflowSpec;
  principal: Principal;
  status: WorkflowStatus;
  createdAt: number;
  finishedAt: number | null;
  listed: boolean;
}

export interface StepRow {
  key: string;
  status: StepStatus;
  attempts: number;
  planned: boolean;
  error: string | null;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface ElementRow {
  step: string;
  idx: number;
  item: string | null;
  taskId: string | null;
  status: "new" | "submitted" | "succeeded" | "failed" | "cancelled";
  result: string | null;
  error: string | null;
  agent: string | null;
}

const FINAL_STEP: readonly StepStatus[] = ["succeeded", "failed", "skipped", "cancelled"];

export class RunStore {
  constructor(private readonly sql: SqlStorage) {}

  exists(): boolean {
    return this.sql.exec("SELECT 1 FROM run").toArray().length > 0;
  }

  run(): RunRow | null {
    const r = this.sql.exec<Record<string, string | number | null>>("SELECT * FROM run").toArray()[0];
    if (!r) return null;
    return {
      id: String(r.id),
      tenant: String(r.tenant),
      name: r.name === null ? null : String(r.name),
      spec: JSON.parse(String(r.spec)) as WorkflowSpec,
      principal: JSON.parse(String(r.principal)) as Principal,
      status: r.status as WorkflowStatus,
      createdAt: Number(r.created_at),
      finishedAt: r.finished_at === null ? null : Number(r.finished_at),
      listed: Number(r.listed) === 1,
    };
  }

  steps(): StepRow[] {
    return this.sql
      .exec<{ key: string; status: StepStatus; attempts: number; planned: number; error: string | null; started_at: number | null; finished_at: number | null }>("SELECT * FROM steps ORDER BY position")
      .toArray()
      .map((s) => ({ key: s.key, status: s.status, attempts: s.attempts, planned: s.planned === 1, error: s.error, startedAt: s.started_at, finishedAt: s.finished_at }));
  }

  elements(step: string): ElementRow[] {
    return this.sql
      .exec<{ step: string; idx: number; item: string | null; task_id: string | null; status: ElementRow["status"]; result: string | null; error: string | null; agent: string | null }>("SELECT step, idx, item, task_id, status, result, error, agent FROM elements WHERE step = ? ORDER BY idx", step)
      .toArray()
      .map((e) => ({ step: e.step, idx: e.idx, item: e.item, taskId: e.task_id, status: e.status, result: e.result, error: e.error, agent: e.agent }));
  }

  start(id: string, tenant: string, spec: WorkflowSpec, principal: Principal, now: number): void {
    this.sql.exec("INSERT INTO run (id, tenant, name, spec, principal, status, created_at) VALUES (?, ?, ?, ?, ?, 'running', ?)", id, tenant, spec.name, JSON.stringify(spec), JSON.stringify(principal), now);
    spec.steps.forEach((s, i) => this.sql.exec("INSERT INTO steps (key, position, status) VALUES (?, ?, 'pending')", s.key, i));
    this.advance(now);
  }

  /** Steps whose dependencies are done start (unplanned); a run with nothing left to do ends. */
  advance(now: number): void {
    const run = this.run();
    if (!run || run.status !== "running") return;
    const specs = new Map(run.spec.steps.map((s) => [s.key, s] as const));
    let steps = this.steps();
    for (let changed = true; changed; ) {
      changed = false;
      const byKey = new Map(steps.map((s) => [s.key, s] as const));
      for (const step of steps) {
        if (step.status !== "pending") continue;
        const deps = specs.get(step.key)!.dependsOn.map((d) => byKey.get(d)!);
        const doneOk = (d: StepRow) => d.status === "succeeded" || (d.status === "failed" && specs.get(d.key)!.continueOnFailure);
        if (deps.some((d) => (FINAL_STEP.includes(d.status) && !doneOk(d)))) {
          this.setStep(step.key, "skipped", now);
          changed = true;
        } else if (deps.every(doneOk)) {
          this.sql.exec("UPDATE steps SET status = 'running', attempts = attempts + 1, planned = 0, error = NULL, started_at = ?, finished_at = NULL WHERE key = ?", now, step.key);
          this.sql.exec("DELETE FROM elements WHERE step = ?", step.key);
          changed = true;
        }
      }
      if (changed) steps = this.steps();
    }
    if (steps.every((s) => FINAL_STEP.includes(s.status))) {
      const failed = steps.some((s) => (s.status === "failed" && !specs.get(s.key)!.continueOnFailure) || s.status === "cancelled" || s.status === "skipped");
      this.sql.exec("UPDATE run SET status = ?, finished_at = ?, listed = 0", failed ? "failed" : "succeeded", now);
    }
  }

  /** A running step's elements: one plain task, or one per forEach item (null: the step failed instead). */
  plan(step: string, items: readonly unknown[] | null, error: string | null, now: number): void {
    const row = this.steps().find((s) => s.key === step);
    if (!row || row.status !== "running" || row.planned) return;
    if (error !== null) return this.stepFailed(step, error, now);
    if (items === null) this.sql.exec("INSERT INTO elements (step, idx, status) VALUES (?, 0, 'new')", step);
    else items.forEach((item, i) => this.sql.exec("INSERT INTO elements (step, idx, item, status) VALUES (?, ?, ?, 'new')", step, i, JSON.stringify(item ?? null)));
    this.sql.exec("UPDATE steps SET planned = 1 WHERE key = ?", step);
    if (items !== null && items.length === 0) this.finishStep(step, now);
  }

  /** The submit answered these task ids for elements of this attempt. */
  submitted(step: string, attempt: number, ids: readonly { idx: number; taskId: string }[]): void {
    const row = this.steps().find((s) => s.key === step);
    if (!row || row.attempts !== attempt) return;
    for (const { idx, taskId } of ids) this.sql.exec("UPDATE elements SET task_id = ?, status = CASE status WHEN 'new' THEN 'submitted' ELSE status END WHERE step = ? AND idx = ?", taskId, step, idx);
  }

  /** A task's end (idempotent: a repeat, or an end of an earlier attempt, changes nothing). */
  taskEnded(end: WorkflowTaskEnd, result: string | null, now: number): void {
    const run = this.run();
    const row = this.steps().find((s) => s.key === end.ref.step);
    if (!run || !row || row.attempts !== end.ref.attempt || row.status !== "running") return;
    const el = this.sql.exec<{ status: string }>("SELECT status FROM elements WHERE step = ? AND idx = ?", end.ref.step, end.ref.index).toArray()[0];
    if (!el || el.status === "succeeded" || el.status === "failed" || el.status === "cancelled") return;
    const status = elementStatus(end.status);
    this.sql.exec("UPDATE elements SET status = ?, task_id = ?, result = ?, error = ?, agent = ? WHERE step = ? AND idx = ?", status, end.taskId, result, end.error, end.agentId, end.ref.step, end.ref.index);
    const spec = run.spec.steps.find((s) => s.key === end.ref.step)!;
    if (status !== "succeeded" && !spec.continueOnFailure && run.spec.onFailure === "fail_fast") {
      return this.stepFailed(end.ref.step, end.error ?? JSON.stringify({ message: `task ${end.taskId} ended ${end.status}` }), now);
    }
    const open = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM elements WHERE step = ? AND status IN ('new', 'submitted')", end.ref.step).one().n;
    if (open === 0) this.finishStep(end.ref.step, now);
  }

  private finishStep(step: string, now: number): void {
    const bad = this.sql.exec<{ task_id: string | null; error: string | null }>("SELECT task_id, error FROM elements WHERE step = ? AND status != 'succeeded' ORDER BY idx LIMIT 1", step).toArray()[0];
    if (bad) return this.stepFailed(step, bad.error ?? JSON.stringify({ message: `task ${bad.task_id} did not succeed` }), now);
    this.setStep(step, "succeeded", now);
    this.advance(now);
  }

  private stepFailed(step: string, error: string, now: number): void {
    const run = this.run()!;
    this.sql.exec("UPDATE steps SET status = 'failed', error = ?, finished_at = ? WHERE key = ?", error, now, step);
    this.cancelElements(step);
    const spec = run.spec.steps.find((s) => s.key === step)!;
    if (run.spec.onFailure === "fail_fast" && !spec.continueOnFailure) {
      for (const s of this.steps()) {
        if (s.status === "running") (this.setStep(s.key, "cancelled", now), this.cancelElements(s.key));
        else if (s.status === "pending") this.setStep(s.key, "skipped", now);
      }
    }
    this.advance(now);
  }

  private setStep(key: string, status: StepStatus, now: number): void {
    this.sql.exec("UPDATE steps SET status = ?, finished_at = ? WHERE key = ?", status, now, key);
  }

  /** Unfinished elements of a step are cancelled; those with a task are left for the object to cancel. */
  private cancelElements(step: string): void {
    this.sql.exec("UPDATE elements SET cancel_pending = 1 WHERE step = ? AND status = 'submitted' AND task_id IS NOT NULL", step);
    this.sql.exec("UPDATE elements SET status = 'cancelled' WHERE step = ? AND status IN ('new', 'submitted')", step);
  }

  cancel(now: number): void {
    const run = this.run()!;
    if (run.status !== "running") throw new ApiError("conflict", `workflow ${run.id} is already ${run.status}`);
    for (const s of this.steps()) {
      if (s.status === "running" || s.status === "pending") (this.setStep(s.key, "cancelled", now), this.cancelElements(s.key));
    }
    this.sql.exec("UPDATE run SET status = 'cancelled', finished_at = ?, listed = 0", now);
  }

  /** A failed step and the steps skipped or cancelled because of it run again. */
  retry(key: string, now: number): void {
    const run = this.run()!;
    const step = this.steps().find((s) => s.key === key);
    if (!step) throw new ApiError("not_found", `workflow ${run.id} has no step "${key}"`);
    if (step.status !== "failed" || run.status === "cancelled") throw new ApiError("conflict", `step "${key}" is ${step.status} in a ${run.status} workflow: only a failed step can be retried`);
    const again = new Set([key, ...descendantsOf(run.spec.steps, key)]);
    if (run.spec.onFailure === "fail_fast") for (const s of this.steps()) if (s.status === "skipped" || s.status === "cancelled") again.add(s.key);
    for (const k of again) this.sql.exec("UPDATE steps SET status = 'pending', error = NULL, finished_at = NULL WHERE key = ? AND status IN ('failed', 'skipped', 'cancelled')", k);
    this.sql.exec("UPDATE run SET status = 'running', finished_at = NULL, listed = 0");
    this.advance(now);
  }

  /** Running steps not planned yet. */
  unplanned(): StepSpec[] {
    const run = this.run();
    if (!run || run.status !== "running") return [];
    const keys = new Set(this.steps().filter((s) => s.status === "running" && !s.planned).map((s) => s.key));
    return run.spec.steps.filter((s) => keys.has(s.key));
  }

  /** Elements to submit now: of running, planned steps, within `inFlight` unfinished tasks per step. */
  toSubmit(inFlight: number): { step: StepSpec; attempt: number; elements: ElementRow[] }[] {
    const run = this.run();
    if (!run || run.status !== "running") return [];
    const out: { step: StepSpec; attempt: number; elements: ElementRow[] }[] = [];
    for (const s of this.steps()) {
      if (s.status !== "running" || !s.planned) continue;
      const busy = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM elements WHERE step = ? AND status = 'submitted'", s.key).one().n;
      const room = inFlight - busy;
      if (room <= 0) continue;
      const fresh = this.elements(s.key).filter((e) => e.status === "new").slice(0, room);
      if (fresh.length > 0) out.push({ step: run.spec.steps.find((x) => x.key === s.key)!, attempt: s.attempts, elements: fresh });
    }
    return out;
  }

  cancelsDue(): { step: string; idx: number; taskId: string }[] {
    return this.sql.exec<{ step: string; idx: number; task_id: string }>("SELECT step, idx, task_id FROM elements WHERE cancel_pending = 1 LIMIT 500").toArray().map((r) => ({ step: r.step, idx: r.idx, taskId: r.task_id }));
  }

  cancelled(done: readonly { step: string; idx: number }[]): void {
    for (const d of done) this.sql.exec("UPDATE elements SET cancel_pending = 0 WHERE step = ? AND idx = ?", d.step, d.idx);
  }

  listed(): void {
    this.sql.exec("UPDATE run SET listed = 1");
  }

  retryAt(at: number | null): void {
    this.sql.exec("UPDATE run SET retry_at = ?", at);
  }

  nextRetry(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT max(retry_at) AS at FROM run").toArray()[0]?.at ?? null;
  }
}

function elementStatus(status: FinalStatus | "failed"): "succeeded" | "failed" | "cancelled" {
  return status === "succeeded" ? "succeeded" : status === "cancelled" ? "cancelled" : "failed";
}
