import { DurableObject } from "cloudflare:workers";

export interface PoolEntry {
  pool: string;
  createdAt: number;
}

/**
 * The mesh's directory: which pools exist. Each pool coordinator records itself here after its first write;
 * the Worker reads the list for `GET /v1/pools` and `/metrics`. One instance, named "mesh".
 */
export class MeshDirectory extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS pools (pool TEXT PRIMARY KEY, created_at INTEGER NOT NULL) WITHOUT ROWID",
    );
  }

  /** Records a pool; idempotent, the first registration's time stays. */
  async register(pool: string, at: number): Promise<void> {
    this.ctx.storage.sql.exec("INSERT OR IGNORE INTO pools (pool, created_at) VALUES (?, ?)", pool, at);
  }

  async list(): Promise<PoolEntry[]> {
    return this.ctx.storage.sql
      .exec<{ pool: string; created_at: number }>("SELECT pool, created_at FROM pools ORDER BY pool")
      .toArray()
      .map((row) => ({ pool: row.pool, createdAt: row.created_at }));
  }
}
