/**
 * The shards of each pool, versioned: every pool starts with shard 0 (implicitly, until its first change); a
 * shard is added active, drained (it takes no new tasks and hands its queued ones to the active shards) and
 * retired once it holds nothing unfinished. Ids are never reused. Every change bumps the pool's version, which
 * the Worker's cache of the list compares.
 */
import { ApiError } from "../../contract/errors.ts";
import type { Region, ShardList, ShardRecord, ShardState } from "../../contract/records.ts";

interface ShardRow {
  [column: string]: SqlStorageValue;
  pool: string;
  shard: number;
  region: string | null;
  state: ShardState;
  created_at: number;
}

export const SHARDS_MIGRATION = `
  CREATE TABLE shards (
    pool TEXT NOT NULL,
    shard INTEGER NOT NULL CHECK (shard >= 0),
    region TEXT,
    state TEXT NOT NULL CHECK (state IN ('active', 'draining', 'retired')),
    created_at INTEGER NOT NULL,
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (pool, shard)
  ) WITHOUT ROWID;
  CREATE TABLE shard_versions (pool TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
`;

export class PoolShards {
  constructor(private readonly sql: SqlStorage) {}

  list(pool: string): ShardList {
    const rows = this.sql.exec<ShardRow>("SELECT * FROM shards WHERE pool = ? ORDER BY shard", pool).toArray();
    const version = this.sql.exec<{ version: number }>("SELECT version FROM shard_versions WHERE pool = ?", pool).toArray()[0]?.version ?? 0;
    const shards: ShardRecord[] = rows.length === 0 ? [{ id: 0, region: null, state: "active", createdAt: 0 }] : rows.map((r) => ({ id: r.shard, region: r.region as Region | null, state: r.state, createdAt: r.created_at }));
    return { pool, version, shards };
  }

  /** Adds an active shard with the next id. Call inside a transaction. */
  add(pool: string, region: Region | null, now: number): ShardRecord {
    this.materialize(pool, now);
    const next = this.sql.exec<{ n: number }>("SELECT max(shard) + 1 AS n FROM shards WHERE pool = ?", pool).one().n;
    this.sql.exec("INSERT INTO shards (pool, shard, region, state, created_at, changed_at) VALUES (?, ?, ?, 'active', ?, ?)", pool, next, region, now, now);
    this.bump(pool);
    return { id: next, region, state: "active", createdAt: now };
  }

  /** Marks a shard draining; the last active shard cannot drain (409). Call inside a transaction. */
  drain(pool: string, shard: number, now: number): ShardRecord {
    this.materialize(pool, now);
    const row = this.row(pool, shard);
    if (row.state === "retired") throw new ApiError("conflict", `shard ${shard} of pool ${pool} is retired`);
    if (row.state === "draining") return this.record(row);
    const active = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM shards WHERE pool = ? AND state = 'active'", pool).one().n;
    if (active <= 1) throw new ApiError("conflict", `shard ${shard} is the last active shard of pool ${pool}; add another before draining it`);
    this.sql.exec("UPDATE shards SET state = 'draining', changed_at = ? WHERE pool = ? AND shard = ?", now, pool, shard);
    this.bump(pool);
    return { ...this.record(row), state: "draining" };
  }

  /** A draining shard that holds nothing unfinished any more. Idempotent. Call inside a transaction. */
  retire(pool: string, shard: number, now: number): void {
    const row = this.row(pool, shard);
    if (row.state !== "draining") return;
    this.sql.exec("UPDATE shards SET state = 'retired', changed_at = ? WHERE pool = ? AND shard = ?", now, pool, shard);
    this.bump(pool);
  }

  private row(pool: string, shard: number): ShardRow {
    const row = this.sql.exec<ShardRow>("SELECT * FROM shards WHERE pool = ? AND shard = ?", pool, shard).toArray()[0];
    if (!row) throw new ApiError("not_found", `no shard ${shard} in pool ${pool}`);
    return row;
  }

  private record(row: ShardRow): ShardRecord {
    return { id: row.shard, region: row.region as Region | null, state: row.state, createdAt: row.created_at };
  }

  /** The implicit shard 0 becomes a row at the pool's first change. */
  private materialize(pool: string, now: number): void {
    this.sql.exec("INSERT OR IGNORE INTO shards (pool, shard, region, state, created_at, changed_at) VALUES (?, 0, NULL, 'active', ?, ?)", pool, now, now);
  }

  private bump(pool: string): void {
    this.sql.exec("INSERT INTO shard_versions (pool, version) VALUES (?, 1) ON CONFLICT (pool) DO UPDATE SET version = version + 1", pool);
  }
}
