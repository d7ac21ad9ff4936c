/** A pool's configuration (API.md, "Pool configuration"), as the coordinator keeps it and a patch changes it. */
import type { CacheConfig, SemanticCacheConfig } from "./cache.ts";
import type { Strategy } from "./records.ts";

export interface PoolConfig {
  strategy: Strategy;
  heartbeatIntervalMs: number;
  missedHeartbeats: number;
  failedAgentTtlMs: number;
  breaker: { failureThreshold: number; cooldownMs: number };
  /** How long finished tasks are kept before the alarm purges them. */
  retentionMs: number;
  /** The ceiling of unfinished (waiting, queued, leased) tasks one tenant may have in this pool. */
  maxUnfinishedPerTenant: number;
  /** Agent operations need a client certificate that Cloudflare verified (mTLS). */
  requireClientCert: boolean;
  /** How the pool's shards exchange their shared state (anti-entropy rounds). */
  gossip: GossipConfig;
  /** Which task types' results are cached, and for how long at each level (API.md, "Caches and vector indexes"). */
  cache: CacheConfig;
  /** Serving order inside a priority: round robin over fairness keys by weight (the default), or arrival order. */
  scheduling: Scheduling;
  /** Most tasks of one tenant and `concurrencyKey` queued or leased at once: per key, else `default` (null: none). */
  concurrency: ConcurrencyConfig;
  /** Most leases per `periodMs` of one tenant's tasks with a `rateLimitKey`, per key (absent: none). */
  rateLimits: Record<string, RateLimitConfig>;
}

export interface ConcurrencyConfig {
  default: number | null;
  limits: Record<string, number>;
}

export interface RateLimitConfig {
  limit: number;
  periodMs: number;
}

export const SCHEDULINGS = ["fair", "fifo"] as const;
export type Scheduling = (typeof SCHEDULINGS)[number];

export const GOSSIP_TOPOLOGIES = ["auto", "star", "ring", "mesh"] as const;
export type GossipSetting = (typeof GOSSIP_TOPOLOGIES)[number];
/** The topology in use: `auto` is star below 4 shards, ring up to 16, mesh above. */
export type Topology = Exclude<GossipSetting, "auto">;

export interface GossipConfig {
  /** Time between a shard's exchange rounds. */
  intervalMs: number;
  /** Peers per round in a mesh. */
  fanout: number;
  topology: GossipSetting;
}

/** A change of pool configuration: any subset of the fields; nested objects merge field by field. */
export type PoolConfigPatch = Partial<Omit<PoolConfig, "breaker" | "gossip" | "cache" | "concurrency" | "rateLimits">> & {
  /** Keys set to null are removed. */
  concurrency?: { default?: number | null; limits?: Record<string, number | null> };
  rateLimits?: Record<string, RateLimitConfig | null>;
  breaker?: Partial<PoolConfig["breaker"]>;
  gossip?: Partial<GossipConfig>;
  cache?: { types?: string[]; ttlMs?: Partial<CacheConfig["ttlMs"]>; semantic?: Partial<SemanticCacheConfig> };
};
