import { z } from "zod";
import { AGENT_STATES, GOSSIP_TOPOLOGIES, SCHEDULINGS, STRATEGIES } from "../../contract/records.ts";
import { TenantName } from "./auth.ts";
import { GateKey, intIn, PoolName, queryIntIn, TaskId } from "./common.ts";
import { Task, TaskStatus, TaskType } from "./tasks.ts";

/** An index name (API.md, "Caches and vector indexes"): like a pool name. */
export const IndexName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "an index name is 1-63 characters of a-z, 0-9, _ and -, starting with a letter or digit");

const DAY_MS = 24 * 3600 * 1000;

export const QueueCounts = z
  .object({ waiting: z.number(), queued: z.number(), leased: z.number(), succeeded: z.number(), dead: z.number(), cancelled: z.number() })
  .meta({ id: "QueueCounts" });
const AgentCounts = z.object(Object.fromEntries(AGENT_STATES.map((s) => [s, z.number()]))).meta({ id: "AgentCounts" });

export const PoolSummary = z.object({ pool: z.string(), queue: QueueCounts, agents: AgentCounts });
export const PoolsResponse = z.object({ pools: z.array(PoolSummary) });

export const PoolStatsResponse = PoolSummary.extend({
  throughput: z.object({
    windowSeconds: z.number(),
    submittedPerSec: z.number(),
    leasedPerSec: z.number(),
    succeededPerSec: z.number(),
    failedPerSec: z.number(),
  }),
  latencyMs: z
    .object({ p50: z.number().nullable(), p99: z.number().nullable(), windowSeconds: z.number(), samples: z.number() })
    .describe("submit-to-success time of tasks that succeeded in the window"),
});

export const ListTasksQuery = z.object({
  status: TaskStatus.optional(),
  limit: queryIntIn(1, 1000).default(100),
  cursor: z.string().max(4096).optional(),
});
export const ListTasksResponse = z.object({ tasks: z.array(Task), cursor: z.string().nullable() });

export const RedriveBody = z.strictObject({ ids: z.array(TaskId).min(1).max(1000).optional() });
export const RedriveResponse = z.object({ redriven: z.number().int(), skipped: z.array(z.string()).describe("ids that were not dead, not found, or whose dependency is dead") });

export const Strategy = z.enum(STRATEGIES);

export const GossipSchema = z
  .object({
    intervalMs: z.number().int().describe("time between a shard's anti-entropy rounds"),
    fanout: z.number().int().describe("peers per round in a mesh"),
    topology: z.enum(GOSSIP_TOPOLOGIES).describe("auto: star below 4 shards, ring up to 16, mesh above"),
  })
  .meta({ id: "GossipConfig" });

const YEAR_MS = 365 * DAY_MS;

export const CacheConfigSchema = z
  .object({
    types: z.array(z.string()).describe("cacheable task types (a submit with cache: true is cacheable whatever its type)"),
    ttlMs: z.object({ l1: z.number().int(), l2: z.number().int(), l3: z.number().int() }).describe("time to live per level: L1 the Worker isolate, L2 Workers KV, L3 R2 with the Cache API in front"),
    semantic: z.object({
      types: z.array(z.string()).describe("types whose near-duplicates (by embedding) are hits"),
      index: z.string().nullable().describe("the submitting tenant's vector index the embeddings go to"),
      threshold: z.number().describe("least cosine similarity of a hit"),
      model: z.object({ r2Key: z.string(), dimensions: z.number().int() }).nullable().describe("the ONNX model in R2 that embeds a task's text at the edge"),
    }),
  })
  .meta({ id: "CacheConfig" });

const MAX_GATE_KEYS = 1000;

export const RateLimitSchema = z
  .object({ limit: z.number().int(), periodMs: z.number().int() })
  .meta({ id: "RateLimit" });

export const PoolConfigSchema = z
  .object({
    strategy: Strategy,
    heartbeatIntervalMs: z.number().int(),
    missedHeartbeats: z.number().int(),
    failedAgentTtlMs: z.number().int(),
    breaker: z.object({ failureThreshold: z.number().int(), cooldownMs: z.number().int() }),
    retentionMs: z.number().int().describe("how long finished tasks are kept"),
    maxUnfinishedPerTenant: z.number().int().describe("quota: waiting, queued and leased tasks one tenant may have in the pool"),
    requireClientCert: z.boolean().describe("agent operations need a client certificate Cloudflare verified (mTLS)"),
    gossip: GossipSchema,
    cache: CacheConfigSchema,
    scheduling: z.enum(SCHEDULINGS).describe("serving order inside a priority: fair (round robin over fairnessKey by weight, the default) or fifo"),
    concurrency: z
      .object({
        default: z.number().int().nullable().describe("limit of a concurrencyKey not in limits; null: none"),
        limits: z.record(z.string(), z.number().int()).describe("most tasks of one tenant and key queued or leased at once"),
      })
      .meta({ id: "ConcurrencyConfig" }),
    rateLimits: z.record(z.string(), RateLimitSchema).describe("most leases per periodMs of one tenant's tasks with the rateLimitKey"),
  })
  .meta({ id: "PoolConfig" });

export const PoolConfigPatch = z.strictObject({
  strategy: Strategy.optional(),
  heartbeatIntervalMs: intIn(100, 3_600_000).optional(),
  missedHeartbeats: intIn(1, 100).optional(),
  failedAgentTtlMs: intIn(1000, 30 * DAY_MS).optional(),
  breaker: z.strictObject({ failureThreshold: intIn(1, 1_000_000).optional(), cooldownMs: intIn(100, 3_600_000).optional() }).optional(),
  retentionMs: intIn(60_000, 365 * DAY_MS).optional(),
  maxUnfinishedPerTenant: intIn(1, 100_000_000).optional(),
  requireClientCert: z.boolean().optional(),
  scheduling: z.enum(SCHEDULINGS).optional(),
  concurrency: z
    .strictObject({
      default: intIn(1, 1_000_000).nullable().optional(),
      limits: z
        .record(GateKey, intIn(1, 1_000_000).nullable())
        .refine((o) => Object.keys(o).length <= MAX_GATE_KEYS, `at most ${MAX_GATE_KEYS} keys`)
        .optional()
        .describe("null removes a key"),
    })
    .optional(),
  rateLimits: z
    .record(GateKey, z.strictObject({ limit: intIn(1, 1_000_000), periodMs: intIn(100, DAY_MS) }).nullable())
    .refine((o) => Object.keys(o).length <= MAX_GATE_KEYS, `at most ${MAX_GATE_KEYS} keys`)
    .optional()
    .describe("null removes a key"),
  gossip: z
    .strictObject({
      intervalMs: intIn(100, 600_000).optional(),
      fanout: intIn(1, 16).optional(),
      topology: z.enum(GOSSIP_TOPOLOGIES).optional(),
    })
    .optional(),
  cache: z
    .strictObject({
      types: z.array(TaskType).max(256).optional(),
      ttlMs: z
        .strictObject({
          l1: intIn(1000, YEAR_MS).optional(),
          l2: intIn(60_000, YEAR_MS).optional().describe("at least 60000: the KV minimum"),
          l3: intIn(60_000, YEAR_MS).optional(),
        })
        .optional(),
      semantic: z
        .strictObject({
          types: z.array(TaskType).max(256).optional(),
          index: IndexName.nullable().optional(),
          threshold: z.number().min(0).max(1).optional(),
          model: z.strictObject({ r2Key: z.string().min(1).max(1024), dimensions: intIn(1, 4096) }).nullable().optional(),
        })
        .optional(),
    })
    .optional(),
});

export const PoolTenantParams = z.object({ pool: PoolName, tenant: TenantName });

export const TenantValuesSchema = z
  .object({
    pool: z.string(),
    tenant: z.string(),
    maxUnfinished: z.number().int().describe("most unfinished tasks of this tenant in the pool (at most the pool's maxUnfinishedPerTenant)"),
    weight: z.number().int().describe("fair share of the tenant (1-1000, default 1)"),
    gpuSecondsPerHour: z.number().nullable().describe("GPU-seconds the tenant may use per hour; null: no limit"),
  })
  .meta({ id: "TenantValues" });

export const TenantValuesPatch = z.strictObject({
  maxUnfinished: intIn(1, 100_000_000).optional().describe("never above the pool's maxUnfinishedPerTenant; a tenant's admin may lower its own"),
  weight: intIn(1, 1000).optional().describe("operators and the bootstrap key only"),
  gpuSecondsPerHour: z.number().min(0).max(1_000_000_000).nullable().optional().describe("operators and the bootstrap key only; null: no limit"),
});
