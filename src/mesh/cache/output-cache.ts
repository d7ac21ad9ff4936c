/**
 * The output cache as the Worker sees it (API.md, "Caches and vector indexes"): a lookup walks L1 (this isolate),
 * L2 (Workers KV), then L3 (this data center's Cache API, then R2), and a hit in a lower level fills the levels
 * above it. Fills after a task's success are the coordinator's (durable-objects/pool-coordinator/cache/filler.ts).
 * Hits write no task row; they are counted in the pool's metrics by a report to the pool's first shard, batched
 * over a second.
 */
import type { CacheEntry, CacheIndexEntry, CacheLevel, CachePurge } from "../../../contract/cache.ts";
import { parseCacheKey } from "../../../contract/cache.ts";
import { shardName } from "../../../contract/ids.ts";
import type { CacheConfig, CacheCount } from "../../../contract/records.ts";
import { openEntry, readL2, readL3, readL3Edge, writeL2, writeL3Edge } from "../../../lib/cache/levels.ts";
import type { OptionalSecrets } from "../../env.ts";
import { CONFIG_FRESH_MS, GENERATION_FRESH_MS, isolateCache, isolateName, type IsolateCache } from "./isolate.ts";

export interface CacheHit {
  level: CacheLevel;
  entry: CacheEntry;
}

/** Hits counted in this isolate and not yet reported, by pool. */
const unreported = new Map<string, Map<string, CacheCount>>();
let reporting: Promise<void> | null = null;
const REPORT_AFTER_MS = 1_000;

export class OutputCache {
  private readonly env: Env & OptionalSecrets;
  private readonly local: IsolateCache;
  private readonly waitUntil: (p: Promise<unknown>) => void;

  constructor(env: Env & OptionalSecrets, request: Request | undefined, waitUntil: (p: Promise<unknown>) => void) {
    this.env = env;
    this.local = isolateCache(isolateName(env as { DAA_TEST_HOOKS?: string }, request));
    this.waitUntil = waitUntil;
  }

  /** The pool's cache settings, at most `CONFIG_FRESH_MS` old (null: no such pool yet). */
  async config(pool: string, now: number): Promise<CacheConfig | null> {
    const held = this.local.configs.get(pool);
    if (held && now - held.at < CONFIG_FRESH_MS) return held.config;
    const config = await this.env.POOL.getByName(shardName(pool, 0)).cacheConfig();
    this.local.configs.set(pool, { config, at: now });
    return config;
  }

  /** The tenant's cache generation, at most `GENERATION_FRESH_MS` old. */
  async generation(tenant: string, now: number): Promise<number> {
    const held = this.local.generations.get(tenant);
    if (held && now - held.at < GENERATION_FRESH_MS) return held.generation;
    const generation = await this.env.CACHE_INDEX.getByName(tenant).generation();
    this.local.generations.set(tenant, { generation, at: now });
    return generation;
  }

  async lookup(key: string, ttl: CacheConfig["ttlMs"], now: number): Promise<CacheHit | null> {
    const tenant = parseCacheKey(key)!.tenant;
    const generation = await this.generation(tenant, now);
    const l1 = this.local.get(key, generation, now);
    if (l1) return { level: "l1", entry: l1 };

    const fromKv = await readL2(this.env, key, generation);
    if (fromKv !== null) {
      const entry = await this.open(tenant, fromKv, now);
      if (entry) {
        this.local.set(entry, generation, ttl.l1, now);
        return { level: "l2", entry };
      }
    }

    let sealed = await readL3Edge(key, generation);
    const fromEdge = sealed !== null;
    if (sealed === null) {
      // R2 is the global store; the index confirms the entry was not purged while a fill was under way.
      const [stored, listed] = await Promise.all([readL3(this.env, key, now), this.indexed(key, now)]);
      if (stored === null || listed === null) return null;
      sealed = stored;
    }
    const entry = await this.open(tenant, sealed, now);
    if (!entry) return null;
    if (!fromEdge) this.waitUntil(writeL3Edge(key, generation, sealed, entry.expiresAt, now).catch((err) => console.warn("cache: Cache API put failed", err)));
    this.waitUntil(writeL2(this.env, key, generation, sealed, ttl.l2, entry.expiresAt, now).catch((err) => console.warn("cache: KV put failed", err)));
    this.local.set(entry, generation, ttl.l1, now);
    return { level: "l3", entry };
  }

  /** An entry's record in its tenant's index, while it lives. */
  indexed(key: string, now: number): Promise<CacheIndexEntry | null> {
    const tenant = parseCacheKey(key)!.tenant;
    return this.env.CACHE_INDEX.getByName(tenant).get(key, now);
  }

  /** Removes entries from every level; answers how many the index held. */
  async purge(tenant: string, what: { keys: string[] } | CachePurge): Promise<number> {
    const purged = await this.env.CACHE_INDEX.getByName(tenant).purge(what);
    // This isolate sees it at once; the others within GENERATION_FRESH_MS.
    this.local.generations.delete(tenant);
    if ("keys" in what) for (const key of what.keys) this.local.l1.delete(key);
    return purged;
  }

  /** Fills L1 with an entry this isolate just learned (a miss's result that a client waited for). */
  async remember(entry: CacheEntry, ttl: CacheConfig["ttlMs"], now: number): Promise<void> {
    this.local.set(entry, await this.generation(entry.tenant, now), ttl.l1, now);
  }

  /** Counts a hit for the pool's metrics (reported within about a second). */
  count(pool: string, outcome: CacheCount["outcome"], type: string): void {
    const byKey = unreported.get(pool) ?? new Map<string, CacheCount>();
    unreported.set(pool, byKey);
    const k = `${outcome}\n${type}`;
    const held = byKey.get(k);
    if (held) held.n += 1;
    else byKey.set(k, { outcome, type, n: 1 });
    reporting ??= this.report();
    this.waitUntil(reporting);
  }

  private async report(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, REPORT_AFTER_MS));
    const batch = [...unreported];
    unreported.clear();
    reporting = null;
    await Promise.all(
      batch.map(([pool, counts]) =>
        this.env.POOL.getByName(shardName(pool, 0))
          .countCache([...counts.values()])
          .catch((err) => console.warn(`cache: counting hits of pool ${pool} failed`, err)),
      ),
    );
  }

  /** Opens a sealed entry of `tenant` still within its lifetime (null: expired, or not the tenant's). */
  private async open(tenant: string, sealed: string, now: number): Promise<CacheEntry | null> {
    try {
      const entry = await openEntry(this.env, tenant, sealed);
      return entry.expiresAt > now ? entry : null;
    } catch (err) {
      console.warn("cache: an entry did not open", err);
      return null;
    }
  }
}

