/**
 * The semantic cache (API.md, "Caches and vector indexes"): for a type in the pool's `cache.semantic.types`, the
 * task's `embedding` (or its `text`, embedded at the edge by `cache.semantic.model`) is looked up in the tenant's
 * index `cache.semantic.index`; the nearest entry of the same type and `cacheVersion` at or above `threshold`
 * (cosine) answers, with its similarity. Each succeeded semantic task is upserted there (vector id: its cache key)
 * by its fill. Never for other types: they may have side effects.
 */
import { ApiError } from "../../../contract/errors.ts";
import type { CacheConfig } from "../../../contract/records.ts";
import { embedText } from "../embed.ts";
import { queryIndex } from "../indexes.ts";
import type { CacheHit, OutputCache } from "./output-cache.ts";

export interface SemanticPlan {
  index: string;
  vector: number[];
}

/** The vector a semantic submit is looked up and filed under; null when the task is not semantic. */
export async function semanticPlan(env: Env, config: CacheConfig | null, s: { type: string; embedding?: number[] | undefined; text?: string | undefined }, field: string): Promise<SemanticPlan | null> {
  const semantic = config?.semantic;
  if (!semantic || !semantic.index || !semantic.types.includes(s.type)) return null;
  if (s.embedding) return { index: semantic.index, vector: s.embedding };
  if (s.text === undefined) return null;
  if (!semantic.model) throw new ApiError("invalid_request", "the task has text but the pool has no embedding model", [{ field: `${field}text`, message: "set cache.semantic.model in the pool's config, or send embedding" }]);
  return { index: semantic.index, vector: await embedText(env, s.text, semantic.model) };
}

/** The nearest cached output of the same tenant, type and version at or above the threshold, if any. */
export async function semanticLookup(
  env: Env,
  cache: OutputCache,
  tenant: string,
  plan: SemanticPlan,
  type: string,
  version: string,
  config: CacheConfig,
  now: number,
): Promise<(CacheHit & { similarity: number }) | null> {
  let best;
  try {
    [best] = await queryIndex(env, tenant, plan.index, plan.vector, 1, { type, cacheVersion: version });
  } catch (err) {
    // No index yet: the first fill creates it. Anything else (a vector of the wrong length) is the caller's to fix.
    if (err instanceof ApiError && err.code === "not_found") return null;
    if (err instanceof ApiError && err.code === "invalid_request") {
      throw new ApiError("invalid_request", err.message, [{ field: "embedding", message: `does not fit index ${plan.index}: ${err.message}` }]);
    }
    throw err;
  }
  if (!best || best.score < config.semantic.threshold) return null;
  const hit = await cache.lookup(best.id, config.ttlMs, now);
  return hit ? { ...hit, similarity: best.score } : null;
}
