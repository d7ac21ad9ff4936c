import { DurableObject } from "cloudflare:workers";
import { ApiError, attempt, failed, ok, type Outcome } from "../../contract/errors.ts";
import type { Principal } from "../../contract/records.ts";
import type { WorkflowListRow, WorkflowMesh, WorkflowSpec, WorkflowStatus, WorkflowTaskEnd, WorkflowView } from "../../contract/workflows.ts";
import { Timers } from "../shared/timers.ts";
import { RunEffects } from "./effects.ts";
import { RunRegistry } from "./registry.ts";
import { RunStore } from "./run.ts";
import { migrate } from "./schema.ts";
import { viewOf } from "./view.ts";

/**
 * Workflows across pools (docs/workflows.md). One class, two roles over its SQLite storage:
 * - a run (named by its id, run.ts): its steps and their tasks; tasks are submitted through the Worker's
 *   MeshEntrypoint (the self service binding MESH), and each task's end arrives from its pool coordinator by a
 *   durable callback (`taskEnded`);
 * - a tenant's registry (`tenant:<tenant>`, registry.ts): idempotency keys and the listing.
 * Every change is one transaction; what needs the network runs after it (effects.ts), retried by the alarm.
 */
export class WorkflowCoordinator extends DurableObject<Env> {
  private readonly run: RunStore;
  private readonly registry: RunRegistry;
  private readonly effects: RunEffects;
  private readonly timers: Timers;
  private readonly waiters = new Set<() => void>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const storage = ctx.storage;
    storage.transactionSync(() => migrate(storage.sql));
    this.run = new RunStore(storage.sql);
    this.registry = new RunRegistry(storage.sql);
    this.timers = new Timers(storage);
    this.timers.register({ name: "effects", next: () => this.run.nextRetry(), run: () => 0 });
    this.effects = new RunEffects({
      env,
      mesh: () => env.MESH as unknown as WorkflowMesh,
      apply: (fn) => this.apply(fn),
      list: async (tenant, id, status) => env.WORKFLOWS.getByName(`tenant:${tenant}`).setStatus(id, status),
      wakeAt: async (at) => {
        this.timers.set(at);
        await this.timers.commit();
      },
    });
    // A run restarted with work under way (the object was evicted or the mesh restarted): carry on.
    ctx.blockConcurrencyWhile(async () => {
      const row = this.run.run();
      if (row && (row.status === "running" || !row.listed)) await storage.setAlarm(Date.now());
    });
  }

  private apply<T>(fn: (run: RunStore, now: number) => T): T {
    const value = this.ctx.storage.transactionSync(() => fn(this.run, Date.now()));
    if (this.run.run()?.status !== "running") for (const wake of [...this.waiters]) wake();
    return value;
  }

  private mine(tenant: string | null): Outcome<null> {
    const row = this.run.run();
    if (!row || (tenant !== null && row.tenant !== tenant)) return failed(new ApiError("not_found", "no such workflow"));
    return ok(null);
  }

  private async answer(): Promise<WorkflowView> {
    return (await viewOf(this.run, this.effects))!;
  }

  // ---- a run ----------------------------------------------------------------------------------------------------

  /** Starts the run (a repeat with the same id changes nothing); its first tasks are submitted before it answers. */
  async start(id: string, tenant: string, spec: WorkflowSpec, principal: Principal): Promise<{ created: boolean; workflow: WorkflowView }> {
    const created = !this.run.exists();
    if (created) this.apply((run, now) => run.start(id, tenant, spec, principal, now));
    await this.effects.flush();
    return { created, workflow: await this.answer() };
  }

  /** `tenant` null: the super-admin sees every tenant's runs. */
  async view(tenant: string | null): Promise<Outcome<WorkflowView>> {
    const mine = this.mine(tenant);
    return mine.ok ? ok(await this.answer()) : mine;
  }

  /** Waits up to `waitMs` for the run to end; answers it as it is then. */
  async waitFinal(tenant: string | null, waitMs: number): Promise<Outcome<WorkflowView>> {
    const mine = this.mine(tenant);
    if (!mine.ok) return mine;
    if (this.run.run()!.status === "running" && waitMs > 0) {
      let wake = () => {};
      const done = new Promise<void>((resolve) => (wake = resolve));
      this.waiters.add(wake);
      const timer = setTimeout(wake, waitMs);
      await done;
      clearTimeout(timer);
      this.waiters.delete(wake);
    }
    return ok(await this.answer());
  }

  /** A task's end from its pool coordinator. Idempotent; resolves once it is recorded. */
  async taskEnded(end: WorkflowTaskEnd): Promise<void> {
    const result = end.status === "succeeded" ? await this.effects.keep(end.tenant, end.result) : null;
    this.apply((run, now) => run.taskEnded(end, result, now));
    this.ctx.waitUntil(this.effects.flush());
  }

  async cancel(tenant: string | null): Promise<Outcome<WorkflowView>> {
    const mine = this.mine(tenant);
    if (!mine.ok) return mine;
    const out = attempt(() => this.apply((run, now) => run.cancel(now)));
    if (!out.ok) return out;
    await this.effects.flush();
    return ok(await this.answer());
  }

  async retry(tenant: string | null, key: string): Promise<Outcome<WorkflowView>> {
    const mine = this.mine(tenant);
    if (!mine.ok) return mine;
    const out = attempt(() => this.apply((run, now) => run.retry(key, now)));
    if (!out.ok) return out;
    await this.effects.flush();
    return ok(await this.answer());
  }

  override async alarm(): Promise<void> {
    this.timers.fired();
    await this.effects.flush();
    await this.timers.rearm(Date.now());
  }

  // ---- a tenant's registry ----------------------------------------------------------------------------------------

  async claim(id: string, idempotencyKey: string | null): Promise<{ id: string; created: boolean }> {
    return this.ctx.storage.transactionSync(() => this.registry.claim(id, idempotencyKey, Date.now()));
  }

  async setStatus(id: string, status: WorkflowStatus): Promise<void> {
    this.ctx.storage.transactionSync(() => this.registry.setStatus(id, status));
  }

  async list(status: WorkflowStatus | null, limit: number, cursor: string | null): Promise<{ rows: WorkflowListRow[]; cursor: string | null }> {
    return this.registry.list(status, limit, cursor);
  }
}
