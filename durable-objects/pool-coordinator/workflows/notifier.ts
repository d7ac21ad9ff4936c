/**
 * Reports the ends of workflow tasks (callbacks.ts holds the outbox) to their runs' WorkflowCoordinator after the
 * commit that made them due. One run at a time; a report that fails is retried on the "workflows" timer kind.
 */
import type { Outcome } from "../../../contract/errors.ts";
import type { WorkflowTaskEnd } from "../../../contract/workflows.ts";
import type { PoolCore } from "../core.ts";

const STEP = 100;

export interface WorkflowNotifierHost {
  /** Delivers one end to its run; resolves once the run has recorded it. */
  deliver(end: WorkflowTaskEnd): Promise<void>;
  core(): PoolCore | null;
  apply<T>(fn: (core: PoolCore, now: number) => T): Outcome<T>;
  commitTimers(): Promise<void>;
}

export class WorkflowNotifier {
  private running: Promise<void> | null = null;

  constructor(private readonly host: WorkflowNotifierHost) {}

  flush(): Promise<void> {
    const core = this.host.core();
    if (!core?.workflowCallbacks.due) return this.running ?? Promise.resolve();
    core.workflowCallbacks.due = false;
    this.running ??= this.run().finally(() => (this.running = null));
    return this.running;
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const taken = this.host.apply((core, now) => core.workflowCallbacks.take(now, STEP));
        if (!taken.ok || taken.value.length === 0) return;
        const jobs = taken.value;
        const ok = await Promise.all(jobs.map((j) => this.host.deliver(j.end).then(() => true, (err) => (console.warn(`workflow callback of task ${j.taskId} failed`, err), false))));
        this.host.apply((core, now) => core.workflowCallbacks.settle(jobs.filter((_, i) => ok[i]).map((j) => j.taskId), jobs.filter((_, i) => !ok[i]).map((j) => j.taskId), now));
        if (ok.includes(false) || jobs.length < STEP) return;
      }
    } finally {
      await this.host.commitTimers();
    }
  }
}
