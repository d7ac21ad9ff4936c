import { DurableObject } from "cloudflare:workers";
import type { CacheIndexEntry, CachePurge } from "../../contract/cache.ts";
import { deleteL2, deleteL3, type CacheLevelsEnv } from "../../lib/cache/levels.ts";
import { migrate, type Schema } from "../shared/migrations.ts";

/**
 * The output cache entries of one tenant (the object is named after the tenant): what purges by tag or type
 * enumerate, what `GET /v1/cache/:key` reads, and the tenant's cache **generation**, which every purge bumps. The
 * Worker's L1, KV and the Cache API hold entries under the generation they were filled in (lib/cache/levels.ts),
 * so a purge reaches them without a delete in every isolate and data center; R2, the global store, is deleted
 * here, object by object, before the index forgets the entries. Entries past their end are removed on the alarm.
 */
export const CACHE_INDEX_SCHEMA: Schema = {
  migrations: [
    /* 1: entries, their tags, the generation */ `
    CREATE TABLE entries (
      key TEXT PRIMARY KEY,
      type TEXT NOT NULL,
      version TEXT NOT NULL,
      tags TEXT NOT NULL,
      source_task TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX entries_by_type ON entries (type, version);
    CREATE INDEX entries_by_expiry ON entries (expires_at);
    CREATE TABLE entry_tags (tag TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (tag, key)) WITHOUT ROWID;
    CREATE INDEX entry_tags_by_key ON entry_tags (key);
    CREATE TABLE generation (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO generation (name, value) VALUES ('generation', 1);`,
  ],
};

/** Entries removed per purge step and per alarm (R2 deletes up to 1000 keys a call). */
const STEP = 1000;

interface EntryRow {
  key: string;
  type: string;
  version: string;
  tags: string;
  source_task: string;
  created_at: number;
  expires_at: number;
  [column: string]: SqlStorageValue;
}

export class CacheIndex extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.transactionSync(() => migrate(ctx.storage.sql, CACHE_INDEX_SCHEMA));
  }

  private get sql(): SqlStorage {
    return this.ctx.storage.sql;
  }

  /** The tenant's cache generation: entries filled under an older one are not served from L1, KV or the Cache API. */
  async generation(): Promise<number> {
    return this.currentGeneration();
  }

  /** Records a filled entry (its value is already in R2); answers the generation to fill KV and L1 under. */
  async register(entry: CacheIndexEntry): Promise<number> {
    const sql = this.sql;
    this.ctx.storage.transactionSync(() => {
      sql.exec("DELETE FROM entry_tags WHERE key = ?", entry.key);
      sql.exec(
        "INSERT OR REPLACE INTO entries (key, type, version, tags, source_task, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        entry.key,
        entry.type,
        entry.version,
        JSON.stringify(entry.tags),
        entry.sourceTaskId,
        entry.createdAt,
        entry.expiresAt,
      );
      for (const tag of new Set(entry.tags)) sql.exec("INSERT INTO entry_tags (tag, key) VALUES (?, ?)", tag, entry.key);
    });
    await this.armFor(entry.expiresAt);
    return this.currentGeneration();
  }

  /** The entry, while it lives. */
  async get(key: string, now: number): Promise<CacheIndexEntry | null> {
    const row = this.sql.exec<EntryRow>("SELECT * FROM entries WHERE key = ? AND expires_at > ?", key, now).toArray()[0];
    return row ? entryOf(row) : null;
  }

  /**
   * Removes entries (by key, tags, or type and version) from every level: R2 first, then the index, then a new
   * generation (so L1, KV and the Cache API stop serving what they hold); answers how many entries went.
   */
  async purge(what: { keys: string[] } | CachePurge): Promise<number> {
    let purged = 0;
    const before = this.currentGeneration();
    for (;;) {
      const keys = this.select(what, STEP);
      if (keys.length === 0) break;
      await deleteL3(this.env as unknown as CacheLevelsEnv, keys);
      this.ctx.storage.transactionSync(() => this.forget(keys));
      // Tidying only: KV values of the old generation are never read again and expire by their TTL.
      await deleteL2(this.env as unknown as CacheLevelsEnv, keys, before);
      purged += keys.length;
      if ("keys" in what) break;
    }
    // A purge that found nothing still moves the generation: a value filled a moment ago, not yet registered, or
    // another isolate's stale L1 entry of a key removed earlier, must not outlive the call.
    this.sql.exec("UPDATE generation SET value = value + 1 WHERE name = 'generation'");
    return purged;
  }

  /** Keys of the entries a purge names, at most `limit`. */
  private select(what: { keys: string[] } | CachePurge, limit: number): string[] {
    const sql = this.sql;
    const keys = (rows: Iterable<{ key: string }>) => [...rows].map((r) => r.key);
    if ("keys" in what) return keys(sql.exec<{ key: string }>("SELECT key FROM entries WHERE key IN (SELECT value FROM json_each(?))", JSON.stringify(what.keys)));
    if ("tags" in what) {
      return keys(sql.exec<{ key: string }>("SELECT DISTINCT key FROM entry_tags WHERE tag IN (SELECT value FROM json_each(?)) LIMIT ?", JSON.stringify(what.tags), limit));
    }
    if (what.cacheVersion === undefined) return keys(sql.exec<{ key: string }>("SELECT key FROM entries WHERE type = ? LIMIT ?", what.type, limit));
    return keys(sql.exec<{ key: string }>("SELECT key FROM entries WHERE type = ? AND version = ? LIMIT ?", what.type, what.cacheVersion, limit));
  }

  private forget(keys: readonly string[]): void {
    const list = JSON.stringify(keys);
    this.sql.exec("DELETE FROM entry_tags WHERE key IN (SELECT value FROM json_each(?))", list);
    this.sql.exec("DELETE FROM entries WHERE key IN (SELECT value FROM json_each(?))", list);
  }

  private currentGeneration(): number {
    return this.sql.exec<{ value: number }>("SELECT value FROM generation WHERE name = 'generation'").one().value;
  }

  private async armFor(at: number): Promise<void> {
    const armed = await this.ctx.storage.getAlarm();
    if (armed === null || at < armed) await this.ctx.storage.setAlarm(at);
  }

  /** Entries past their end leave R2 and the index (KV and the Cache API expire them by their own TTL). */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const keys = [...this.sql.exec<{ key: string }>("SELECT key FROM entries WHERE expires_at <= ? ORDER BY expires_at LIMIT ?", now, STEP)].map((r) => r.key);
    if (keys.length > 0) {
      await deleteL3(this.env as unknown as CacheLevelsEnv, keys);
      await deleteL2(this.env as unknown as CacheLevelsEnv, keys, this.currentGeneration());
      this.ctx.storage.transactionSync(() => this.forget(keys));
    }
    const next = this.sql.exec<{ at: number | null }>("SELECT min(expires_at) AS at FROM entries").one().at;
    if (next !== null) await this.ctx.storage.setAlarm(keys.length === STEP ? now : next);
  }
}

function entryOf(row: EntryRow): CacheIndexEntry {
  return {
    key: row.key,
    type: row.type,
    version: row.version,
    tags: JSON.parse(row.tags) as string[],
    sourceTaskId: row.source_task,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}
