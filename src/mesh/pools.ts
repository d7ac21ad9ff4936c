/**
 * Pool-level calls over every shard (API.md: pool stats, lists and `/metrics` add up every shard). Reads ask every
 * shard that ever served the pool (a retired one still holds finished tasks until they are purged) and add up what
 * they answer; configuration and tenant values are the pool's, copied on every shard: a change goes to the first
 * shard (its refusal is the answer) and then to the others.
 */
import { unwrap, type Outcome } from "../../contract/errors.ts";
import type { AgentCounts, PoolConfig, PoolConfigPatch, PoolMetrics, PoolStats, Principal, RedriveOutcome, ShardRecord, StatusCounts, TenantValues, TenantValuesPatch } from "../../contract/records.ts";
import type { PoolUsage } from "../../contract/usage.ts";
import type { Calls } from "./calls.ts";
import { mergeMetrics, mergeStats, sumAgentCounts, sumStatusCounts } from "./merge.ts";
import type { Coordinator } from "./placement.ts";

export class Pools {
  private readonly calls: Calls;

  constructor(calls: Calls) {
    this.calls = calls;
  }

  /**
   * The same read on every shard that ever served the pool. A shard that does not know the pool or the caller's
   * tenant (never written to, or by that tenant: its tasks all went to other shards) adds nothing; when none
   * answers, the first shard's refusal is the answer (the pool does not exist, or the caller may not see it).
   */
  private async gather<T>(pool: string, read: (c: Coordinator) => Promise<Outcome<T>>): Promise<{ shard: ShardRecord; value: T }[]> {
    const shards = (await this.calls.placement.list(pool)).shards;
    const outs = await Promise.all(shards.map(async (shard) => ({ shard, out: await this.calls.on(pool, shard.id, read) })));
    const values: { shard: ShardRecord; value: T }[] = [];
    for (const { shard, out } of outs) {
      if (out.ok) values.push({ shard, value: out.value });
      else if (out.error.code !== "not_found") unwrap(out);
    }
    if (values.length === 0 && outs[0]) unwrap(outs[0].out);
    return values;
  }

  async stats(caller: Principal, pool: string): Promise<PoolStats> {
    return mergeStats((await this.gather(pool, (c) => c.stats(caller))).map((v) => v.value));
  }

  async counts(caller: Principal, pool: string): Promise<{ queue: StatusCounts; agents: AgentCounts }> {
    const parts = (await this.gather(pool, (c) => c.counts(caller))).map((v) => v.value);
    return { queue: sumStatusCounts(parts.map((p) => p.queue)), agents: sumAgentCounts(parts.map((p) => p.agents)) };
  }

  /** Per shard, for the shard list (`GET /v1/pools/:pool/shards`). */
  async countsByShard(caller: Principal, pool: string): Promise<Map<number, { queue: StatusCounts; agents: AgentCounts }>> {
    return new Map((await this.gather(pool, (c) => c.counts(caller))).map((v) => [v.shard.id, v.value]));
  }

  /** The pool's metrics, added up, with the routing decisions of each shard kept apart. */
  async metrics(caller: Principal, pool: string): Promise<PoolMetrics & { byShard: PoolMetrics[] }> {
    const parts = (await this.gather(pool, (c) => c.metrics(caller))).map((v) => v.value);
    return { ...mergeMetrics(parts), byShard: parts };
  }

  async config(caller: Principal, pool: string): Promise<PoolConfig> {
    const first = (await this.calls.placement.serving(pool))[0]!;
    return unwrap(await this.calls.on(pool, first.id, (c) => c.getConfig(caller)));
  }

  async tenantValues(caller: Principal, pool: string, tenant: string): Promise<TenantValues> {
    const first = (await this.calls.placement.serving(pool))[0]!;
    return unwrap(await this.calls.on(pool, first.id, (c) => c.getTenantValues(caller, tenant)));
  }

  /** A change of the pool's own values: the first serving shard decides, the others follow. */
  private async everywhere<T>(pool: string, change: (c: Coordinator) => Promise<Outcome<T>>): Promise<T> {
    const [first, ...others] = await this.calls.placement.serving(pool);
    const value = unwrap(await this.calls.on(pool, first!.id, change));
    await Promise.all(others.map((s) => this.calls.on(pool, s.id, change)));
    return value;
  }

  async updateConfig(caller: Principal, pool: string, patch: PoolConfigPatch): Promise<PoolConfig> {
    return this.everywhere(pool, (c) => c.updateConfig(caller, patch));
  }

  async updateTenantValues(caller: Principal, pool: string, tenant: string, patch: TenantValuesPatch): Promise<TenantValues> {
    return this.everywhere(pool, (c) => c.updateTenantValues(caller, tenant, patch));
  }

  /**
   * A tenant's usage in every pool it is listed in, each added up over every shard that ever served the pool
   * (milliseconds add exactly); pools where it has none in the window are left out. The caller checked who may ask.
   */
  async usage(caller: Principal, tenant: string, from: number, to: number): Promise<PoolUsage[]> {
    const pools = await this.calls.placement.directory().list(tenant);
    const ms = (seconds: number) => Math.round(seconds * 1000);
    const per = await Promise.all(
      pools.map(async ({ pool }) => {
        const shards = (await this.calls.placement.list(pool)).shards;
        const parts = await Promise.all(shards.map(async (shard) => unwrap(await this.calls.on(pool, shard.id, (c) => c.usage(caller, tenant, from, to)))));
        const found = parts.filter((p): p is PoolUsage => p !== null);
        if (found.length === 0) return null;
        const sum = (f: (p: PoolUsage) => number) => found.reduce((n, p) => n + f(p), 0);
        return { pool, tasks: sum((p) => p.tasks), taskSeconds: sum((p) => ms(p.taskSeconds)) / 1000, gpuSeconds: sum((p) => ms(p.gpuSeconds)) / 1000 };
      }),
    );
    return per.filter((p): p is PoolUsage => p !== null).sort((a, b) => (a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : 0));
  }

  /**
   * Dead tasks back to the queue on every shard. With ids, an id is skipped only if every shard skipped it (each
   * shard skips the ids it does not hold); a shard that drains hands what it redrives to the active ones.
   */
  async redrive(caller: Principal, pool: string, ids: string[] | null): Promise<RedriveOutcome> {
    const parts = (await this.gather(pool, (c) => c.redrive(caller, ids))).map((v) => v.value);
    const redriven = parts.reduce((sum, p) => sum + p.redriven, 0);
    if (ids === null) return { redriven, skipped: parts.flatMap((p) => p.skipped) };
    const skippedBy = new Map<string, number>();
    for (const p of parts) for (const id of p.skipped) skippedBy.set(id, (skippedBy.get(id) ?? 0) + 1);
    return { redriven, skipped: ids.filter((id) => skippedBy.get(id) === parts.length) };
  }
}
