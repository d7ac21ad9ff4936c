import { DurableObject } from "cloudflare:workers";
import type { KeyRecord, Role } from "../../contract/records.ts";
import { migrate, tableExists, type Schema } from "../shared/migrations.ts";

export type { KeyRecord } from "../../contract/records.ts";

interface KeyRow {
  [column: string]: SqlStorageValue;
  id: string;
  name: string;
  roles: string;
  pool: string | null;
  hash: string;
  created_at: number;
  revoked_at: number | null;
}

const encoder = new TextEncoder();

/** Version 1 is the store as it was first made (before version rows existed: `keys` without `meta`). */
export const KEY_SCHEMA: Schema = {
  migrations: [
    /* 1: the keys of the tenant, hashes only */ `
    CREATE TABLE keys (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      roles TEXT NOT NULL,
      pool TEXT,
      hash TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      revoked_at INTEGER
    ) WITHOUT ROWID`,
  ],
  predatesVersions: (sql) => tableExists(sql, "keys"),
};

/**
 * The API keys of one tenant (the object is named after the tenant). Only a SHA-256 of each key is stored; a
 * presented key is checked by hashing it and comparing in constant time. Revocation is a write here, and every
 * request made with the key reads here, so it takes effect at once.
 */
export class KeyStore extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.transactionSync(() => migrate(ctx.storage.sql, KEY_SCHEMA));
  }

  private get tenant(): string {
    return this.ctx.id.name ?? "unknown";
  }

  async create(input: { id: string; name: string; roles: Role[]; pool: string | null; hash: string; now: number }): Promise<KeyRecord> {
    this.ctx.storage.sql.exec(
      "INSERT INTO keys (id, name, roles, pool, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      input.id,
      input.name,
      JSON.stringify(input.roles),
      input.pool,
      input.hash,
      input.now,
    );
    return this.record(this.row(input.id)!);
  }

  async list(): Promise<KeyRecord[]> {
    return this.ctx.storage.sql
      .exec<KeyRow>("SELECT * FROM keys ORDER BY created_at, id")
      .toArray()
      .map((row) => this.record(row));
  }

  /** Revokes a key; null when there is no such key. Revoking twice keeps the first time. */
  async revoke(id: string, now: number): Promise<KeyRecord | null> {
    this.ctx.storage.sql.exec("UPDATE keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", now, id);
    const row = this.row(id);
    return row ? this.record(row) : null;
  }

  /** The key with this id if `hash` is its hash and it is not revoked; null otherwise. */
  async authenticate(id: string, hash: string): Promise<KeyRecord | null> {
    const row = this.row(id);
    if (!row || row.revoked_at !== null) return null;
    const a = encoder.encode(row.hash);
    const b = encoder.encode(hash);
    if (a.byteLength !== b.byteLength || !crypto.subtle.timingSafeEqual(a, b)) return null;
    return this.record(row);
  }

  private row(id: string): KeyRow | undefined {
    return this.ctx.storage.sql.exec<KeyRow>("SELECT * FROM keys WHERE id = ?", id).toArray()[0];
  }

  private record(row: KeyRow): KeyRecord {
    return {
      id: row.id,
      tenant: this.tenant,
      name: row.name,
      roles: JSON.parse(row.roles) as Role[],
      pool: row.pool,
      createdAt: row.created_at,
      revokedAt: row.revoked_at,
    };
  }
}
