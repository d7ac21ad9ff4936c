/**
 * What a run needs of the network, after the commits that called for it: forEach arrays and `$ref` inputs resolved
 * from parents' results (opened from their sealed form), elements submitted through the mesh (at most
 * FOR_EACH_IN_FLIGHT unfinished per step), cancels of tasks whose step ended, and the run's status written to
 * its tenant's registry. One pass at a time; a pass that fails is tried again by the alarm with backoff.
 */
import { MAX_FOR_EACH, FOR_EACH_IN_FLIGHT, type StepSpec, type StepTask, type WorkflowMesh, type WorkflowStatus } from "../../contract/workflows.ts";
import { openField, sealResult, type SealingEnv } from "../../lib/security/sealing.ts";
import { isBlobRef } from "../../lib/security/blob-refs.ts";
import { payloadOf, resolve } from "../../lib/workflows/plan.ts";
import type { RunStore } from "./run.ts";

export interface EffectsHost {
  env: SealingEnv;
  mesh(): WorkflowMesh;
  /** Runs `fn` in one storage transaction. */
  apply<T>(fn: (run: RunStore, now: number) => T): T;
  /** Writes the run's status into its tenant's registry. */
  list(tenant: string, id: string, status: WorkflowStatus): Promise<void>;
  /** Arms the alarm at this time. */
  wakeAt(at: number): Promise<void>;
}

const RETRY_MS = 2_000;

export class RunEffects {
  private running: Promise<void> | null = null;
  private again = false;
  private failures = 0;
  /** Opened results by `<step>:<attempt>:<idx>` (plaintext stays in memory only). */
  private readonly opened = new Map<string, unknown>();

  constructor(private readonly host: EffectsHost) {}

  /** After a commit: one pass (another follows if one is under way). */
  flush(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => (this.running = null));
    return this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        while (await this.pass()) {}
        this.failures = 0;
        this.host.apply((run) => run.retryAt(null));
      } catch (err) {
        console.warn("workflow pass failed; retrying", err);
        this.failures++;
        const at = Date.now() + Math.min(60_000, RETRY_MS * 2 ** (this.failures - 1));
        this.host.apply((run) => run.retryAt(at));
        await this.host.wakeAt(at);
        return;
      }
    } while (this.again);
  }

  /** A result as the run keeps it: an envelope inline, a large one copied to an R2 object of its own. */
  async keep(tenant: string, stored: string | null): Promise<string | null> {
    if (stored === null || !isBlobRef(stored)) return stored;
    return sealResult(this.host.env, tenant, await openField(this.host.env, tenant, "result", stored));
  }

  /** One step's result: its task's, or the array of its forEach tasks' in order (null for those that failed). */
  async stepResult(run: RunStore, tenant: string, spec: StepSpec): Promise<unknown> {
    const step = run.steps().find((s) => s.key === spec.key);
    if (!step || (step.status !== "succeeded" && step.status !== "failed")) return null;
    const elements = run.elements(spec.key);
    const values = await Promise.all(
      elements.map(async (e) => {
        if (e.status !== "succeeded" || e.result === null) return null;
        const key = `${spec.key}:${step.attempts}:${e.idx}`;
        if (!this.opened.has(key)) this.opened.set(key, JSON.parse(await openField(this.host.env, tenant, "result", e.result)));
        return this.opened.get(key);
      }),
    );
    return spec.forEach ? values : (values[0] ?? null);
  }

  private async parentResults(run: RunStore, tenant: string, spec: StepSpec, all: readonly StepSpec[]): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    for (const dep of spec.dependsOn) out.set(dep, await this.stepResult(run, tenant, all.find((s) => s.key === dep)!));
    return out;
  }

  /** Answers whether it changed anything (another pass may find more to do). */
  private async pass(): Promise<boolean> {
    const { run: row, unplanned, toSubmit, cancels, store } = this.host.apply((run) => ({ run: run.run(), unplanned: run.unplanned(), toSubmit: run.toSubmit(FOR_EACH_IN_FLIGHT), cancels: run.cancelsDue(), store: run }));
    if (!row) return false;
    let changed = false;
    for (const spec of unplanned) {
      const parents = await this.parentResults(store, row.tenant, spec, row.spec.steps);
      let items: unknown[] | null = null;
      let error: string | null = null;
      if (spec.forEach) {
        const value = resolve(spec.forEach, parents);
        if (!Array.isArray(value)) error = JSON.stringify({ message: `forEach $ref "${spec.forEach.$ref}" names no array` });
        else if (value.length > MAX_FOR_EACH) error = JSON.stringify({ message: `forEach array has ${value.length} elements; at most ${MAX_FOR_EACH}` });
        else items = value;
      }
      this.host.apply((run, now) => run.plan(spec.key, items, error, now));
      changed = true;
    }
    if (unplanned.length > 0) return true;
    for (const group of toSubmit) {
      const parents = await this.parentResults(store, row.tenant, group.step, row.spec.steps);
      const base = payloadOf(group.step, parents);
      const tasks: StepTask[] = group.elements.map((e) => ({
        type: group.step.type,
        pool: group.step.pool,
        payload: group.step.forEach ? { ...base, item: JSON.parse(e.item ?? "null"), index: e.idx } : base,
        priority: group.step.priority ?? 5,
        requires: group.step.requires,
        idempotencyKey: `workflow:${row.id}:${group.step.key}:${group.attempt}:${e.idx}`,
        maxAttempts: group.step.maxAttempts ?? 3,
        timeoutMs: group.step.timeoutMs ?? 30_000,
        workflow: { run: row.id, step: group.step.key, attempt: group.attempt, index: e.idx },
      }));
      const ids = await this.host.mesh().submitStepTasks(row.principal, tasks);
      this.host.apply((run) => run.submitted(group.step.key, group.attempt, group.elements.map((e, i) => ({ idx: e.idx, taskId: ids[i]! }))));
      changed = true;
    }
    if (cancels.length > 0) {
      await this.host.mesh().cancelTasks(row.principal, cancels.map((c) => c.taskId));
      this.host.apply((run) => run.cancelled(cancels));
      changed = true;
    }
    const now = this.host.apply((run) => run.run());
    if (now && !now.listed) {
      await this.host.list(now.tenant, now.id, now.status);
      this.host.apply((run) => run.run()?.status === now.status && run.listed());
    }
    return changed;
  }
}
