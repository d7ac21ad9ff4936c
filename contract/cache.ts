/**
 * The output cache's vocabulary (API.md, "Caches and vector indexes"), shared by the Worker that looks entries up
 * and the coordinators that fill them.
 */
import type { TaskRecord } from "./records.ts";

/** Pool config `cache` by default: nothing cacheable unless asked; the seed's TTLs (L1 1 h, L2 24 h, L3 7 days). */
export const DEFAULT_CACHE_CONFIG: CacheConfig = {
  types: [],
  ttlMs: { l1: 3_600_000, l2: 86_400_000, l3: 604_800_000 },
  semantic: { types: [], index: null, threshold: 0.95, model: null },
};

export const CACHE_LEVELS = ["l1", "l2", "l3"] as const;
export type CacheLevel = (typeof CACHE_LEVELS)[number];
/** How a cacheable submit was answered (`x-daa-cache`). */
export type CacheOutcome = `hit-${CacheLevel | "semantic"}` | "miss";

/**
 * A cache key as clients see it: `<tenant>.<SHA-256 hex of tenant, type, cacheVersion and canonical payload>`. Opaque
 * to clients; the tenant in front lets `GET /v1/cache/:key` find the entry's tenant without a search.
 */
const KEY = /^([a-z0-9_-]{1,63})\.([0-9a-f]{64})$/;

export function parseCacheKey(key: string): { tenant: string; hash: string } | null {
  const m = KEY.exec(key);
  return m ? { tenant: m[1]!, hash: m[2]! } : null;
}

/** One cached output, as every level holds it (the task's payload and result sealed under its tenant's key). */
export interface CacheEntry {
  key: string;
  tenant: string;
  type: string;
  version: string;
  tags: string[];
  /** The task that produced the result, as its row held it when it succeeded. */
  task: TaskRecord;
  createdAt: number;
  /** When the entry leaves the last level (L3). */
  expiresAt: number;
}

/** The index of a tenant's entries (the CacheIndex object): what purges enumerate and `GET /v1/cache/:key` reads. */
export interface CacheIndexEntry {
  key: string;
  type: string;
  version: string;
  tags: string[];
  sourceTaskId: string;
  createdAt: number;
  expiresAt: number;
}

/** What a cache hit adds to the task it answers with (`cache` in API.md). */
export interface CacheAnswer {
  level: CacheLevel | "semantic";
  key: string;
  sourceTaskId: string;
  similarity?: number;
}

/** A purge: by tags, or by type (and version). */
export type CachePurge = { tags: string[] } | { type: string; cacheVersion?: string };

/** The R2 object key of an entry. */
export function r2KeyOf(key: string): string {
  return `cache/${key}`;
}

// ---- configuration, fills and counts (pool config `cache`, TaskInput.cache, /metrics) --------------------------

export interface CacheConfig {
  /** Cacheable types (a submit with `cache: true` is cacheable whatever its type). */
  types: string[];
  /** Time to live at each level, ms: L1 the Worker isolate, L2 Workers KV, L3 R2 with the Cache API in front. */
  ttlMs: { l1: number; l2: number; l3: number };
  semantic: SemanticCacheConfig;
}

export interface SemanticCacheConfig {
  /** Types whose near-duplicates (by embedding) are hits. Never other types: they may have side effects. */
  types: string[];
  /** The submitting tenant's index the embeddings go to (created with the embedding's dimensions if missing). */
  index: string | null;
  /** Least cosine similarity of a hit. */
  threshold: number;
  /** The model that embeds a task's `text` at the edge: an ONNX file in R2. */
  model: { r2Key: string; dimensions: number } | null;
}

/** What the output cache counts per pool and type: lookups by outcome, and entries filled by successes. */
export const CACHE_COUNTED = ["hit-l1", "hit-l2", "hit-l3", "hit-semantic", "miss", "fill", "fill_failed"] as const;
export interface CacheCount {
  outcome: (typeof CACHE_COUNTED)[number];
  type: string;
  n: number;
}

/** What a cacheable task's success writes to the output cache. */
export interface CacheFill {
  key: string;
  tags: string[];
  version: string;
  /** The vector of a semantic type, upserted into `index` (the tenant's) under the key. */
  semantic?: { index: string; vector: number[] };
}
