/**
 * What the output cache keeps in the Worker isolate: L1 (a byte-bounded LRU with a TTL per entry, by the
 * `lru-cache` library), the tenants' cache generations, and the pools' cache settings, each with a bounded age.
 *
 * A purge elsewhere reaches this isolate's L1 through the generation: an L1 entry is served only under the
 * generation it was filled in, and the generation is read from the tenant's CacheIndex at most `GENERATION_FRESH_MS`
 * after this isolate last read it. So a purge stops every isolate's L1 serving what it removed within that bound
 * (plus the call's own time).
 *
 * Test hook (DAA_TEST_HOOKS=1): the header `x-daa-test-isolate: <name>` gives a request the L1 and generation cache
 * of an isolate of that name, so one workerd process can show what several isolates do.
 */
import { LRUCache } from "lru-cache";
import type { CacheEntry } from "../../../contract/cache.ts";
import type { CacheConfig } from "../../../contract/records.ts";

/** Bytes of entries one isolate's L1 holds (isolates have 128 MB, shared with everything else). */
export const L1_MAX_BYTES = 16 * 1024 * 1024;
/** The bound on how stale a tenant's generation may be in an isolate: a purge reaches every L1 within it. */
export const GENERATION_FRESH_MS = 1_000;
/** The bound on how stale a pool's cache settings may be in an isolate. */
export const CONFIG_FRESH_MS = 2_000;

export interface L1Value {
  /** Payload and result in clear: L1 is memory, never at rest. */
  entry: CacheEntry;
  generation: number;
}

export class IsolateCache {
  readonly l1: LRUCache<string, L1Value>;
  readonly generations = new Map<string, { generation: number; at: number }>();
  readonly configs = new Map<string, { config: CacheConfig | null; at: number }>();

  constructor(maxBytes = L1_MAX_BYTES) {
    this.l1 = new LRUCache<string, L1Value>({
      maxSize: maxBytes,
      // UTF-16 in memory: two bytes a character, plus the key and bookkeeping.
      sizeCalculation: (v, key) => 2 * (key.length + v.entry.task.payload.length + (v.entry.task.result?.length ?? 0)) + 512,
    });
  }

  /** An L1 entry still valid under `generation` at `now`. */
  get(key: string, generation: number, now: number): CacheEntry | null {
    const held = this.l1.get(key);
    if (!held) return null;
    if (held.generation !== generation || held.entry.expiresAt <= now) {
      this.l1.delete(key);
      return null;
    }
    return held.entry;
  }

  set(entry: CacheEntry, generation: number, ttlMs: number, now: number): void {
    const ttl = Math.min(ttlMs, entry.expiresAt - now);
    if (ttl <= 0) return;
    this.l1.set(entry.key, { entry, generation }, { ttl });
  }
}

const isolates = new Map<string, IsolateCache>();

/** This isolate's cache, or under the test hook the named one's. */
export function isolateCache(name = ""): IsolateCache {
  let cache = isolates.get(name);
  if (!cache) {
    cache = new IsolateCache();
    isolates.set(name, cache);
  }
  return cache;
}

export function isolateName(env: { DAA_TEST_HOOKS?: string }, request: Request | undefined): string {
  return env.DAA_TEST_HOOKS === "1" ? (request?.headers.get("x-daa-test-isolate") ?? "") : "";
}
