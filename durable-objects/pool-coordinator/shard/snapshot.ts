/**
 * What a new shard of a pool copies from an existing one so that it behaves as the same pool: the configuration,
 * the tenants that use the pool (pool-level reads answer 404 to others), their values, and the agents (members
 * here, at home where they were). Read in one transaction of the source, written in one of the new shard.
 */
import type { PoolSnapshot } from "../../../contract/shard-rpc.ts";
import type { PoolCore } from "../core.ts";

export function takeSnapshot(core: PoolCore, sql: SqlStorage): PoolSnapshot {
  return {
    config: core.config(),
    tenants: sql.exec<{ tenant: string; first_at: number }>("SELECT tenant, first_at FROM tenants ORDER BY tenant").toArray().map((r) => ({ tenant: r.tenant, firstAt: r.first_at })),
    values: sql
      .exec<{ tenant: string; max_unfinished_granted: number | null; max_unfinished_own: number | null; weight: number | null; gpu_seconds_per_hour: number | null }>("SELECT * FROM tenant_values ORDER BY tenant")
      .toArray()
      .map((r) => ({ tenant: r.tenant, maxUnfinishedGranted: r.max_unfinished_granted, maxUnfinishedOwn: r.max_unfinished_own, weight: r.weight, gpuSecondsPerHour: r.gpu_seconds_per_hour })),
    agents: core.agents.members(),
  };
}

/** Makes this shard a copy of the snapshot's pool (what it already has stays). Call inside a transaction. */
export function applySnapshot(core: PoolCore, sql: SqlStorage, snapshot: PoolSnapshot, now: number): void {
  sql.exec("INSERT INTO meta (key, value) VALUES ('config', ?1) ON CONFLICT (key) DO UPDATE SET value = ?1", JSON.stringify(snapshot.config));
  // Listed already: the source shard put these tenants in the directory.
  for (const t of snapshot.tenants) sql.exec("INSERT OR IGNORE INTO tenants (tenant, first_at, listed) VALUES (?, ?, 1)", t.tenant, t.firstAt);
  for (const v of snapshot.values) {
    sql.exec(
      "INSERT OR REPLACE INTO tenant_values (tenant, max_unfinished_granted, max_unfinished_own, weight, gpu_seconds_per_hour) VALUES (?, ?, ?, ?, ?)",
      v.tenant,
      v.maxUnfinishedGranted,
      v.maxUnfinishedOwn,
      v.weight,
      v.gpuSecondsPerHour,
    );
  }
  core.agents.join(snapshot.agents, now);
}
