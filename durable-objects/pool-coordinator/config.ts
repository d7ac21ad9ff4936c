import { DEFAULT_CACHE_CONFIG } from "../../contract/cache.ts";
import type { PoolConfig, PoolConfigPatch } from "../../contract/records.ts";

export type { PoolConfigPatch } from "../../contract/records.ts";

/** Pool defaults (API.md, "Pool configuration"), plus how long finished tasks are kept. */
export const DEFAULT_CONFIG: PoolConfig = {
  strategy: "least_connections",
  heartbeatIntervalMs: 5_000,
  missedHeartbeats: 3,
  failedAgentTtlMs: 300_000,
  breaker: { failureThreshold: 5, cooldownMs: 30_000 },
  retentionMs: 7 * 24 * 3600 * 1000,
  maxUnfinishedPerTenant: 1_000_000,
  requireClientCert: false,
  gossip: { intervalMs: 1_000, fanout: 2, topology: "auto" },
  cache: DEFAULT_CACHE_CONFIG,
  scheduling: "fair",
  concurrency: { default: null, limits: {} },
  rateLimits: {},
};


/** A patch merged into a config, nested `breaker` included. */
export function mergeConfig(current: PoolConfig, patch: PoolConfigPatch): PoolConfig {
  const { breaker, gossip, cache, concurrency, rateLimits, ...rest } = patch;
  const defined = <T extends object>(o: T | undefined) => Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined));
  const was = current.cache ?? DEFAULT_CONFIG.cache;
  return {
    ...current,
    ...defined(rest),
    breaker: { ...current.breaker, ...defined(breaker) },
    gossip: { ...(current.gossip ?? DEFAULT_CONFIG.gossip), ...defined(gossip) },
    cache: {
      types: cache?.types ?? was.types,
      ttlMs: { ...was.ttlMs, ...defined(cache?.ttlMs) },
      semantic: { ...was.semantic, ...defined(cache?.semantic) },
    },
    concurrency: {
      default: concurrency?.default !== undefined ? concurrency.default : (current.concurrency ?? DEFAULT_CONFIG.concurrency).default,
      limits: withoutNulls({ ...(current.concurrency ?? DEFAULT_CONFIG.concurrency).limits, ...concurrency?.limits }),
    },
    rateLimits: withoutNulls({ ...(current.rateLimits ?? DEFAULT_CONFIG.rateLimits), ...rateLimits }),
  };
}

/** A patch's null values remove their keys. */
function withoutNulls<T>(entries: Record<string, T | null | undefined>): Record<string, T> {
  return Object.fromEntries(Object.entries(entries).filter((e): e is [string, T] => e[1] !== null && e[1] !== undefined));
}

/** The limit of a concurrency key under this config, or null: unlimited. */
export function concurrencyLimit(config: PoolConfig, key: string): number | null {
  return Object.hasOwn(config.concurrency.limits, key) ? config.concurrency.limits[key]! : config.concurrency.default;
}
