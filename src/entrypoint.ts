/**
 * The Worker's named entrypoint for the mesh's own Durable Objects, reached by the self service binding MESH
 * (wrangler.toml): an object may not import the Worker's code (docs/architecture.md), so what it needs of the
 * gateway it asks here, one method per capability. Each method goes through the gateway exactly as the routes do.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { ApiError } from "../contract/errors.ts";
import { FINAL_STATUSES, type Principal } from "../contract/records.ts";
import type { ScheduledTask, SchedulerMesh } from "../contract/schedules.ts";
import type { StepTask, WorkflowMesh } from "../contract/workflows.ts";
import type { OptionalSecrets } from "./env.ts";
import { Gateway } from "./mesh/gateway.ts";

export class MeshEntrypoint extends WorkerEntrypoint<Env & OptionalSecrets> implements WorkflowMesh, SchedulerMesh {
  /** Workflows (docs/workflows.md): a step's tasks, submitted with their workflow reference. */
  async submitStepTasks(caller: Principal, tasks: StepTask[]): Promise<string[]> {
    const outcomes = await new Gateway(this.env).submitter.submit(
      caller,
      tasks.map((t) => ({ ...t, delayMs: 0, dependsOn: [] })),
      true,
      null,
    );
    return outcomes.map((o) => o.task.id);
  }

  /** Workflows: the unfinished tasks of a cancelled or failed step. Final or missing ones count as done. */
  async cancelTasks(caller: Principal, ids: string[]): Promise<void> {
    const gateway = new Gateway(this.env);
    await Promise.all(
      ids.map((id) =>
        gateway.tasks.cancel(caller, id).then(
          () => undefined,
          (err) => {
            if (err instanceof ApiError && (err.code === "conflict" || err.code === "not_found")) return;
            throw err;
          },
        ),
      ),
    );
  }

  /** Schedules (docs/schedules.md): a run's task; a repeat of its idempotency key answers the first task. */
  async submitTask(caller: Principal, task: ScheduledTask & { idempotencyKey: string }): Promise<string> {
    const [outcome] = await new Gateway(this.env).submitter.submit(caller, [{ ...task, dependsOn: (task.dependsOn as string[] | undefined) ?? [] }], false, null);
    if (!outcome) throw new Error("submit answered nothing");
    return outcome.task.id;
  }

  /** Schedules (overlap `skip`): whether a run's task is final; a task that is gone counts as final. */
  async taskFinal(caller: Principal, id: string): Promise<boolean> {
    try {
      const task = await new Gateway(this.env).tasks.get(caller, id);
      return (FINAL_STATUSES as readonly string[]).includes(task.status);
    } catch (err) {
      if (err instanceof ApiError && err.code === "not_found") return true;
      throw err;
    }
  }
}
