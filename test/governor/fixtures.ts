import { runInDurableObject } from "cloudflare:test";
import type { PoolCoordinator } from "../../durable-objects/pool-coordinator";
import type { PoolCore } from "../../durable-objects/pool-coordinator/core";
import { api, poolStub, PoolClock } from "../helpers";
import { createKey } from "../security/fixtures";

export const HOUR = 3_600_000;

/** An hour start in the future (the runtime moves an alarm set in the past to the present). */
export function hourStart(hoursAhead = 0): number {
  return Math.ceil(Date.now() / HOUR) * HOUR + 10 * 365 * 24 * HOUR + hoursAhead * HOUR;
}

let serial = 0;
export function freshTenant(prefix = "gov"): string {
  return `${prefix}-${++serial}-${Math.floor(performance.now())}`;
}

/** A client key of a new tenant. */
export async function clientOf(tenant: string): Promise<string> {
  return (await createKey(tenant, ["client"])).key;
}

/** Clocks of one pool's shards, moved together. */
export class Clocks {
  readonly clocks: PoolClock[];
  constructor(
    pool: string,
    public now: number,
    shards = 1,
  ) {
    this.clocks = Array.from({ length: shards }, (_, i) => new PoolClock(i === 0 ? pool : `${pool}#${i}`, now));
  }

  async install(): Promise<this> {
    for (const c of this.clocks) {
      c.now = this.now;
      await c.install();
    }
    return this;
  }

  /** Moves every shard's clock to `at` and runs their alarms. */
  async to(at: number): Promise<void> {
    const ms = at - this.now;
    this.now = at;
    for (const c of this.clocks) await c.advance(ms);
  }
}

export async function submitAs(token: string, pool: string, fields: Record<string, unknown> = {}): Promise<any> {
  const res = await api("POST", "/v1/tasks", { type: `${pool}.work`, ...fields }, { token });
  if (res.status !== 201) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function complete(id: string, leaseToken: string): Promise<void> {
  const res = await api("POST", `/v1/tasks/${id}/complete`, { leaseToken, result: { ok: true } });
  if (res.status !== 200) throw new Error(`complete answered ${res.status}: ${JSON.stringify(res.body)}`);
}

export async function usage(tenant: string, query: string, token?: string | null) {
  return api("GET", `/v1/tenants/${tenant}/usage${query}`, undefined, token === undefined ? {} : { token });
}

type Inner = { core: PoolCore; ctx: DurableObjectState };

/** The shard's usage_hours rows of a tenant, as stored. */
export async function hourRows(shardName: string, tenant: string): Promise<{ hour: number; tasks: number; task_ms: number; gpu_ms: number }[]> {
  return runInDurableObject(poolStub(shardName), (c: PoolCoordinator) =>
    (c as unknown as Inner).ctx.storage.sql
      .exec<{ hour: number; tasks: number; task_ms: number; gpu_ms: number }>("SELECT hour, tasks, task_ms, gpu_ms FROM usage_hours WHERE tenant = ? ORDER BY hour", tenant)
      .toArray(),
  );
}
