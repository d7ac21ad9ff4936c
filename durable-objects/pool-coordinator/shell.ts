/**
 * The transaction and alarm shell of a pool shard. Every operation runs as one synchronous SQLite transaction
 * (`apply`); at its end, still inside it, the events it emitted are interpreted (a push round may lease ready
 * work in the same commit), and the counters it gathered are written. After its commits the operation settles:
 * waiters wake, the alarm moves earlier if a deadline needs it, new tenants are listed in the directory, and
 * pushes are sent. The alarm runs the due work of every timer kind in chunks and re-arms from the kinds.
 */
import { ApiError, attempt, failed, ok, type Outcome } from "../../contract/errors.ts";
import { parseShardName, type TaskHome } from "../../contract/ids.ts";
import { ALARM_BATCH, type Timers } from "../shared/timers.ts";
import { LISTING_RETRY_MS, PoolCore, poolNotFound } from "./core.ts";
import type { PoolEvents } from "./events.ts";
import { schemaExists } from "./schema.ts";

/** Most timer chunks one alarm works off before it hands the object back to requests and re-arms itself. */
const ALARM_ROUNDS = 8;

export interface ShellHost {
  storage: DurableObjectStorage;
  /** The object's name: the pool (shard 0) or `<pool>#<shard>`. */
  name: string | undefined;
  clock(): number;
  events: PoolEvents;
  timers: Timers;
  /** Records in the directory that a tenant uses this pool. */
  list(pool: string, tenant: string, at: number): Promise<void>;
  /** Resolves once the pushes of committed leases are sent. */
  pushed(): Promise<void>;
  /** Work that follows commits and needs other objects (a draining shard's hand-over). */
  after(): Promise<void>;
}

export class PoolShell {
  core: PoolCore | null = null;
  readonly home: TaskHome;

  constructor(private readonly host: ShellHost) {
    if (!host.name) throw new Error("PoolCoordinator must be reached by name (getByName)");
    this.home = parseShardName(host.name);
  }

  /** On start: a pool that was never written to has no tables; reads of it answer 404 without creating any. */
  async start(): Promise<void> {
    if (!schemaExists(this.host.storage.sql)) return;
    this.open();
    // Re-arm from the timers themselves: an alarm may have been lost with the process.
    await this.host.timers.rearm(this.host.clock());
    await this.settle();
  }

  private open(): PoolCore {
    const { storage, clock, events, timers } = this.host;
    storage.transactionSync(() => PoolCore.initialize(storage.sql, clock()));
    this.core = new PoolCore({ sql: storage.sql, pool: this.home.pool, shard: this.home.shard, emit: events.emit, timers });
    return this.core;
  }

  /** Runs `fn` as one transaction; `create` lets the first write bring the pool into existence. */
  apply<T>(create: boolean, fn: (core: PoolCore, now: number) => T): Outcome<T> {
    let core = this.core;
    if (!core) {
      if (!create) return failed(poolNotFound(this.home.pool));
      core = this.open();
    }
    const now = this.host.clock();
    const target = core;
    const { events } = this.host;
    try {
      const value = this.host.storage.transactionSync(() => {
        const value = fn(target, now);
        events.beforeCommit();
        target.flush(now);
        return value;
      });
      events.committed();
      return ok(value);
    } catch (err) {
      target.discardCaches();
      events.rolledBack();
      if (err instanceof ApiError) return failed(err);
      throw err;
    }
  }

  /** A change and what follows it. */
  async change<T>(create: boolean, fn: (core: PoolCore, now: number) => T): Promise<Outcome<T>> {
    const out = this.apply(create, fn);
    await this.settle();
    return out;
  }

  /** A read outside any transaction (SQLite reads are consistent; nothing is written). */
  read<T>(fn: (core: PoolCore) => T): Outcome<T> {
    const core = this.core;
    if (!core) return failed(poolNotFound(this.home.pool));
    return attempt(() => fn(core));
  }

  /** After an operation's commits: wake waiters, move the alarm, list new tenants, send pushes. */
  async settle(): Promise<void> {
    const core = this.core;
    if (!core) return;
    this.host.events.settle();
    await this.host.timers.commit();
    for (const tenant of core.tenants.unlistedTenants()) await this.list(core, tenant);
    await this.host.pushed();
    await this.host.after();
  }

  async alarm(): Promise<void> {
    const { timers, clock } = this.host;
    timers.fired();
    if (!this.core) return;
    for (let round = 0; round < ALARM_ROUNDS; round++) {
      const handled = this.apply(false, (_, now) => timers.runDue(now, ALARM_BATCH));
      if (!handled.ok || handled.value < ALARM_BATCH) break;
    }
    await this.settle();
    // The alarm that ran is gone: arm the next from the timers themselves.
    await timers.rearm(clock());
  }

  private async list(core: PoolCore, tenant: string): Promise<void> {
    const { storage, clock, timers } = this.host;
    try {
      await this.host.list(core.pool, tenant, clock());
      storage.transactionSync(() => core.tenants.markListed(tenant));
    } catch (err) {
      // The listing timer kind keeps the alarm coming back while a tenant is unlisted.
      console.warn(`pool ${core.pool}: could not reach the directory`, err);
      core.tenants.unlisted = true;
      await timers.arm(clock() + LISTING_RETRY_MS);
    }
  }
}
