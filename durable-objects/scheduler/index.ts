import { DurableObject } from "cloudflare:workers";
import { attempt, ok, type Outcome } from "../../contract/errors.ts";
import type { Principal } from "../../contract/records.ts";
import type { ScheduleRun, ScheduleSpec, ScheduleView, SchedulerMesh } from "../../contract/schedules.ts";
import { Timers } from "../shared/timers.ts";
import { Firing } from "./fire.ts";
import { migrate } from "./schema.ts";
import { CLAIM_BATCH, ScheduleStore } from "./store.ts";

/**
 * Schedules (docs/schedules.md): one Scheduler per tenant (named by the tenant), its schedules and their runs in
 * SQLite (store.ts). The next fire is the "schedules" timer kind over the object's alarm, read from the earliest
 * row and re-armed on every start. An alarm claims the due slots in one transaction (a run row per slot, the
 * cursor moved past them), then submits them (fire.ts) with idempotency keys of their own.
 */
export class Scheduler extends DurableObject<Env> {
  /** The time the object goes by; tests move it (test/schedules/helpers.ts), as PoolClock does for a pool. */
  clock: () => number = () => Date.now();
  private readonly store: ScheduleStore;
  private readonly timers: Timers;
  private readonly firing: Firing;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const storage = ctx.storage;
    storage.transactionSync(() => migrate(storage.sql));
    this.store = new ScheduleStore(storage.sql);
    this.timers = new Timers(storage);
    this.timers.register({ name: "schedules", next: () => this.store.nextDeadline(), run: (now, limit) => this.store.claimDue(now, limit) });
    this.firing = new Firing({
      mesh: () => env.MESH as unknown as SchedulerMesh,
      workflows: env.WORKFLOWS,
      apply: (fn) => this.apply(fn),
    });
    // Re-arm on every start: the alarm is the earliest slot or retry in the rows, whatever was armed before.
    ctx.blockConcurrencyWhile(() => this.timers.rearm(this.clock()));
  }

  private apply<T>(fn: (store: ScheduleStore, now: number) => T): T {
    return this.ctx.storage.transactionSync(() => fn(this.store, this.clock()));
  }

  /** After a change: submit what it claimed, then move the alarm to the earliest deadline. */
  private async settle(): Promise<void> {
    try {
      await this.firing.flush();
    } finally {
      this.timers.fired();
      await this.timers.rearm(this.clock());
    }
  }

  async create(id: string, tenant: string, spec: ScheduleSpec, principal: Principal): Promise<ScheduleView> {
    this.apply((store, now) => store.create(id, tenant, spec, principal, now));
    await this.timers.rearm(this.clock());
    return this.store.view(id);
  }

  async get(id: string): Promise<Outcome<ScheduleView>> {
    return attempt(() => this.store.view(id));
  }

  async list(limit: number, cursor: string | null): Promise<{ schedules: ScheduleView[]; cursor: string | null }> {
    return this.store.list(limit, cursor);
  }

  async setPaused(id: string, paused: boolean): Promise<Outcome<ScheduleView>> {
    const out = attempt(() => this.apply((store, now) => store.setPaused(id, paused, now)));
    if (!out.ok) return out;
    await this.timers.rearm(this.clock());
    return ok(this.store.view(id));
  }

  /** One run now, subject to overlap; answers once it is submitted or skipped (or set to retry). */
  async trigger(id: string): Promise<Outcome<{ schedule: ScheduleView; run: ScheduleRun }>> {
    const out = attempt(() => this.apply((store, now) => store.trigger(id, now)));
    if (!out.ok) return out;
    await this.settle();
    const run = this.store.run(id, out.value, true);
    return attempt(() => ({ schedule: this.store.view(id), run: run! }));
  }

  async remove(id: string): Promise<Outcome<null>> {
    return attempt(() => this.apply((store) => (store.delete(id), null)));
  }

  override async alarm(): Promise<void> {
    this.timers.fired();
    // Claim in chunks, each one transaction that records its slots as claimed; a full chunk means more may be due.
    while (this.apply((_store, now) => this.timers.runDue(now, CLAIM_BATCH)) >= CLAIM_BATCH);
    await this.settle();
  }
}
