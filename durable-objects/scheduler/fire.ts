/**
 * Submitting the pending runs (docs/schedules.md), after the transaction that claimed them: a task through the
 * Worker's MeshEntrypoint (the self service binding MESH), a workflow through its WorkflowCoordinator the way
 * POST /v1/workflows starts one. Both carry the run's idempotency key, so a retry after a crash (the submission
 * went through, its recording did not) finds the first task or workflow instead of making a second.
 */
import type { SchedulerMesh } from "../../contract/schedules.ts";
import type { WorkflowView } from "../../contract/workflows.ts";
import { randomToken } from "../../lib/random.ts";
import type { PendingRun, ScheduleStore } from "./store.ts";

/** Submissions tried this many times are recorded as skipped, with the last error. */
export const MAX_ATTEMPTS = 5;
const RETRY_BASE_MS = 1_000;

export interface FireHost {
  mesh(): SchedulerMesh;
  workflows: Env["WORKFLOWS"];
  apply<T>(fn: (store: ScheduleStore, now: number) => T): T;
}

export class Firing {
  /** Runs being submitted in this instance (an alarm and a trigger may flush at once). */
  private readonly inFlight = new Set<string>();

  constructor(private readonly host: FireHost) {}

  /** Submits every pending run that is due; answers once each is settled or set to retry. */
  async flush(): Promise<void> {
    for (;;) {
      const runs = this.host.apply((store, now) => store.pending(now, 50)).filter((r) => !this.inFlight.has(r.key));
      if (runs.length === 0) return;
      // One schedule's runs in order (overlap looks at the previous one); different schedules at once.
      const bySchedule = new Map<string, PendingRun[]>();
      for (const r of runs) bySchedule.set(r.scheduleId, [...(bySchedule.get(r.scheduleId) ?? []), r]);
      await Promise.all([...bySchedule.values()].map(async (list) => {
        for (const run of list) await this.fire(run);
      }));
    }
  }

  private async fire(run: PendingRun): Promise<void> {
    this.inFlight.add(run.key);
    try {
      if (run.overlap === "skip" && !(await this.previousFinal(run))) {
        this.host.apply((store) => store.settle(run, "skipped", {}, "overlap"));
        return;
      }
      const ids = run.target.kind === "task" ? { taskId: await this.host.mesh().submitTask(run.principal, { ...run.target.task, idempotencyKey: run.key }) } : { workflowId: await this.startWorkflow(run) };
      this.host.apply((store) => store.settle(run, "submitted", ids, null));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.host.apply((store, now) => {
        if (run.attempts + 1 >= MAX_ATTEMPTS) store.settle(run, "skipped", {}, `failed: ${message.slice(0, 500)}`);
        else store.retryLater(run, now + RETRY_BASE_MS * 2 ** run.attempts);
      });
    } finally {
      this.inFlight.delete(run.key);
    }
  }

  /** Whether the schedule's previous task or workflow is final (or there is none, or it is gone). */
  private async previousFinal(run: PendingRun): Promise<boolean> {
    const previous = this.host.apply((store) => store.previous(run));
    if (!previous) return true;
    if (previous.pending) return false;
    if (previous.taskId) return this.host.mesh().taskFinal(run.principal, previous.taskId);
    if (!previous.workflowId) return true;
    const outcome = (await this.host.workflows.getByName(previous.workflowId).view(run.tenant)) as { ok: boolean; value?: WorkflowView };
    return !outcome.ok || outcome.value!.status !== "running";
  }

  private async startWorkflow(run: PendingRun): Promise<string> {
    if (run.target.kind !== "workflow") throw new Error("not a workflow schedule");
    const spec = { ...run.target.workflow, idempotencyKey: run.key };
    const claim = await this.host.workflows.getByName(`tenant:${run.tenant}`).claim(`wf_${randomToken(16)}`, spec.idempotencyKey);
    await this.host.workflows.getByName(claim.id).start(claim.id, run.tenant, spec, run.principal);
    return claim.id;
  }
}
