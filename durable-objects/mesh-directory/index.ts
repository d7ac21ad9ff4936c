import { DurableObject } from "cloudflare:workers";
import { attempt, type Outcome } from "../../contract/errors.ts";
import type { Region, ShardList, ShardRecord } from "../../contract/records.ts";
import { migrate, tableExists, type Schema } from "../shared/migrations.ts";
import { PoolShards, SHARDS_MIGRATION } from "./shards.ts";

/** Version 1 is the directory as it was first made (before version rows existed: `pool_tenants` without `meta`). */
export const DIRECTORY_SCHEMA: Schema = {
  migrations: [
    /* 1: which tenants use which pool */ `
    CREATE TABLE pool_tenants (
      pool TEXT NOT NULL,
      tenant TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (pool, tenant)
    ) WITHOUT ROWID`,
    /* 2: the shards of each pool, versioned */ SHARDS_MIGRATION,
  ],
  predatesVersions: (sql) => tableExists(sql, "pool_tenants"),
};

export interface PoolEntry {
  pool: string;
  createdAt: number;
}

/**
 * The mesh's directory: which pools exist, which tenants use each, and each pool's shards. Pool coordinators record
 * a tenant here after its first write to the pool; the Worker reads it for `GET /v1/pools` and `/metrics`, and
 * caches each pool's shard list (shards.ts). One instance, named "mesh".
 */
export class MeshDirectory extends DurableObject<Env> {
  private readonly shardsOf: PoolShards;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.transactionSync(() => migrate(ctx.storage.sql, DIRECTORY_SCHEMA));
    this.shardsOf = new PoolShards(ctx.storage.sql);
  }

  async shards(pool: string): Promise<ShardList> {
    return this.shardsOf.list(pool);
  }

  async addShard(pool: string, region: Region | null, at: number): Promise<Outcome<{ shard: ShardRecord; list: ShardList }>> {
    return attempt(() => this.ctx.storage.transactionSync(() => ({ shard: this.shardsOf.add(pool, region, at), list: this.shardsOf.list(pool) })));
  }

  async drainShard(pool: string, shard: number, at: number): Promise<Outcome<{ shard: ShardRecord; list: ShardList }>> {
    return attempt(() => this.ctx.storage.transactionSync(() => ({ shard: this.shardsOf.drain(pool, shard, at), list: this.shardsOf.list(pool) })));
  }

  async retireShard(pool: string, shard: number, at: number): Promise<ShardList> {
    return this.ctx.storage.transactionSync(() => {
      this.shardsOf.retire(pool, shard, at);
      return this.shardsOf.list(pool);
    });
  }

  /** Records that a tenant uses a pool; idempotent, the first time stays. */
  async register(pool: string, tenant: string, at: number): Promise<void> {
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO pool_tenants (pool, tenant, created_at) VALUES (?, ?, ?)", pool, tenant, at);
  }

  /** Every pool, or only the pools a tenant uses. */
  async list(tenant: string | null = null): Promise<PoolEntry[]> {
    const rows =
      tenant === null
        ? this.ctx.storage.sql.exec<{ pool: string; created_at: number }>("SELECT pool, min(created_at) AS created_at FROM pool_tenants GROUP BY pool ORDER BY pool")
        : this.ctx.storage.sql.exec<{ pool: string; created_at: number }>("SELECT pool, created_at FROM pool_tenants WHERE tenant = ? ORDER BY pool", tenant);
    return rows.toArray().map((row) => ({ pool: row.pool, createdAt: row.created_at }));
  }
}
