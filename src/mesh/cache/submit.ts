/**
 * A submit through the output cache (API.md, "Caches and vector indexes"). A task is cacheable when its type is in
 * its pool's `cache.types` or it says `"cache": true` (`"cache": false` opts out). A cacheable task whose key is
 * cached is answered with the task that produced the result, and nothing is submitted for it; one that misses is
 * submitted with what its success must fill (TaskInput.cache). A type of `cache.semantic.types` with an embedding
 * (or text) is cacheable too, and looked up by similarity when the exact key misses (semantic.ts). The rest pass
 * through untouched.
 */
import type { CacheAnswer, CacheOutcome } from "../../../contract/cache.ts";
import { DEFAULT_CACHE_CONFIG } from "../../../contract/cache.ts";
import { isPoolName, poolOfType } from "../../../contract/ids.ts";
import type { CacheConfig, Principal, Region, SubmitOutcome } from "../../../contract/records.ts";
import type { Gateway } from "../gateway.ts";
import type { Submission } from "../submit-parts.ts";
import { cacheKeyOf } from "./key.ts";
import { semanticLookup, semanticPlan } from "./semantic.ts";
import type { OutputCache } from "./output-cache.ts";

/** A submission with the cache fields of the submit schema. */
export interface CacheableSubmission extends Submission {
  cache?: boolean | undefined;
  embedding?: number[] | undefined;
  text?: string | undefined;
  cacheTags?: string[] | undefined;
  cacheVersion?: string | undefined;
}

export interface CachedOutcome extends SubmitOutcome {
  /** How the cache answered (null: the task was not cacheable). */
  cacheStatus: CacheOutcome | null;
  cache?: CacheAnswer;
}

export async function submitThroughCache(
  env: Env,
  gateway: Gateway,
  cache: OutputCache,
  caller: Principal,
  submissions: readonly CacheableSubmission[],
  batch: boolean,
  region: Region | null,
): Promise<CachedOutcome[]> {
  const now = Date.now();
  const statuses: (CacheOutcome | null)[] = submissions.map(() => null);
  const answers: (CacheAnswer | undefined)[] = submissions.map(() => undefined);
  const pools = [...new Set(submissions.filter((s) => s.cache !== false).map((s) => poolOfType(s.type, s.pool)).filter(isPoolName))];
  const configs = new Map<string, CacheConfig | null>(await Promise.all(pools.map(async (pool) => [pool, await cache.config(pool, now)] as const)));
  const prepared = await Promise.all(
    submissions.map(async (s, i): Promise<CacheableSubmission> => {
      if (s.cache === false) return s;
      const pool = poolOfType(s.type, s.pool);
      const config = configs.get(pool) ?? null;
      const plan = await semanticPlan(env, config, s, batch ? `tasks.${i}.` : "");
      if (s.cache !== true && !plan && !config?.types.includes(s.type)) return s;
      const settings = config ?? DEFAULT_CACHE_CONFIG;
      const version = s.cacheVersion ?? "";
      const key = await cacheKeyOf(caller.tenant, s.type, version, s.payload);
      if (key === null) return s;
      const exact = await cache.lookup(key, settings.ttlMs, now);
      const near = exact || !plan ? null : await semanticLookup(env, cache, caller.tenant, plan, s.type, version, settings, now);
      const hit = exact ?? near;
      if (hit) {
        const level = near ? "semantic" : hit.level;
        statuses[i] = `hit-${level}`;
        answers[i] = { level, key: hit.entry.key, sourceTaskId: hit.entry.task.id, ...(near ? { similarity: near.similarity } : {}) };
        cache.count(pool, `hit-${level}`, s.type);
        return { ...s, hit: { task: hit.entry.task, created: false } };
      }
      statuses[i] = "miss";
      return { ...s, fill: { key, tags: [...new Set(s.cacheTags ?? [])], version, ...(plan ? { semantic: plan } : {}) } };
    }),
  );
  const outcomes = await gateway.submitter.submit(caller, prepared, batch, region);
  return outcomes.map((o, i) => ({ ...o, cacheStatus: statuses[i]!, ...(answers[i] ? { cache: answers[i] } : {}) }));
}
