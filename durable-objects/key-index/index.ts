import { DurableObject } from "cloudflare:workers";
import { migrate, type Schema } from "../shared/migrations.ts";
import { Timers } from "../shared/timers.ts";

/**
 * Idempotency keys of one pool with several shards (the object is named after the pool): which task each
 * tenant's key names, whatever shard holds it. A submit with a key claims it here first, with the id the task
 * will have; a repeat finds the first claim. A claim whose task was never created (its submit was refused) is
 * given back; one whose task is gone (purged) is taken over by the next submit. Claims are forgotten after
 * `CLAIM_DAYS` days, on the object's alarm.
 */
export const CLAIM_DAYS = 30;
const DAY_MS = 24 * 3600 * 1000;

export const KEY_INDEX_SCHEMA: Schema = {
  migrations: [
    /* 1: claims of idempotency keys */ `
    CREATE TABLE claims (
      tenant TEXT NOT NULL,
      key TEXT NOT NULL,
      task_id TEXT NOT NULL,
      at INTEGER NOT NULL,
      PRIMARY KEY (tenant, key)
    ) WITHOUT ROWID;
    CREATE INDEX claims_by_at ON claims (at);`,
  ],
};

export class KeyIndex extends DurableObject<Env> {
  private readonly timers: Timers;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    ctx.storage.transactionSync(() => migrate(sql, KEY_INDEX_SCHEMA));
    this.timers = new Timers(ctx.storage);
    this.timers.register({
      name: "claims",
      next: () => {
        const at = sql.exec<{ at: number | null }>("SELECT min(at) AS at FROM claims").one().at;
        return at === null ? null : at + CLAIM_DAYS * DAY_MS;
      },
      run: (now, limit) => {
        const cursor = sql.exec("DELETE FROM claims WHERE rowid IN (SELECT rowid FROM claims WHERE at <= ? ORDER BY at LIMIT ?)", now - CLAIM_DAYS * DAY_MS, limit);
        cursor.toArray();
        return cursor.rowsWritten;
      },
    });
  }

  /**
   * Claims keys for tasks about to be submitted, in order, in one transaction. Per item: the task the key names,
   * whether this claim made it (`created`: the caller's task id won), and when that claim was made.
   */
  async claim(tenant: string, items: { key: string; taskId: string }[], now: number): Promise<{ taskId: string; created: boolean; at: number }[]> {
    const sql = this.ctx.storage.sql;
    const out = this.ctx.storage.transactionSync(() =>
      items.map(({ key, taskId }) => {
        const existing = sql.exec<{ task_id: string; at: number }>("SELECT task_id, at FROM claims WHERE tenant = ? AND key = ?", tenant, key).toArray()[0];
        if (existing) return { taskId: existing.task_id, created: false, at: existing.at };
        sql.exec("INSERT INTO claims (tenant, key, task_id, at) VALUES (?, ?, ?, ?)", tenant, key, taskId, now);
        return { taskId, created: true, at: now };
      }),
    );
    if (out.some((o) => o.created)) {
      this.timers.set(now + CLAIM_DAYS * DAY_MS);
      await this.timers.commit();
    }
    return out;
  }

  /** Gives claims back (their tasks were never created), or points them at other tasks (the first ones are gone). */
  async reclaim(tenant: string, changes: { key: string; from: string; to: string | null }[], now: number): Promise<void> {
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      for (const { key, from, to } of changes) {
        if (to === null) sql.exec("DELETE FROM claims WHERE tenant = ? AND key = ? AND task_id = ?", tenant, key, from);
        else sql.exec("UPDATE claims SET task_id = ?, at = ? WHERE tenant = ? AND key = ? AND task_id = ?", to, now, tenant, key, from);
      }
    });
  }

  /** Claims of tasks that existed before the pool had this index (shard 0's keys, when the first shard is added). */
  async seed(entries: { tenant: string; key: string; taskId: string; at: number }[]): Promise<number> {
    const sql = this.ctx.storage.sql;
    let seeded = 0;
    this.ctx.storage.transactionSync(() => {
      for (const e of entries) {
        const cursor = sql.exec("INSERT OR IGNORE INTO claims (tenant, key, task_id, at) VALUES (?, ?, ?, ?)", e.tenant, e.key, e.taskId, e.at);
        cursor.toArray();
        seeded += cursor.rowsWritten;
      }
    });
    if (seeded > 0) {
      this.timers.set(Math.min(...entries.map((e) => e.at)) + CLAIM_DAYS * DAY_MS);
      await this.timers.commit();
    }
    return seeded;
  }

  override async alarm(): Promise<void> {
    this.timers.fired();
    this.ctx.storage.transactionSync(() => this.timers.runDue(Date.now(), 1000));
    await this.timers.rearm(Date.now());
  }
}
