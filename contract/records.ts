/**
 * The records the parts of the mesh exchange: who acts (Principal), tasks, agents, settlements, pool
 * configuration and statistics. Payloads and results are opaque JSON text here (sealed at rest, see
 * lib/security/sealing.ts); the Worker parses them for clients. Times are milliseconds since the epoch.
 */
import type { TenantUsageTotal } from "./usage.ts";
export type { PoolUsage, TenantUsageTotal } from "./usage.ts";
import type { WorkflowRef } from "./workflows.ts";
import type { CacheConfig, CacheCount, CacheFill, SemanticCacheConfig } from "./cache.ts";
export { CACHE_COUNTED, type CacheConfig, type CacheCount, type CacheFill, type SemanticCacheConfig } from "./cache.ts";
export * from "./pool-config.ts";
import type { PoolConfig } from "./pool-config.ts";

export const ROLES = ["admin", "operator", "client", "agent", "auditor"] as const;
export type Role = (typeof ROLES)[number];

export const TASK_STATUSES = ["waiting", "queued", "leased", "succeeded", "dead", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const FINAL_STATUSES = ["succeeded", "dead", "cancelled"] as const satisfies readonly TaskStatus[];
export type FinalStatus = (typeof FINAL_STATUSES)[number];
export const UNFINISHED_STATUSES = ["waiting", "queued", "leased"] as const satisfies readonly TaskStatus[];

export function isFinal(status: TaskStatus): status is FinalStatus {
  return status === "succeeded" || status === "dead" || status === "cancelled";
}

export const AGENT_STATES = ["pending", "initializing", "running", "paused", "scaling", "terminating", "failed", "recovering"] as const;
export type AgentState = (typeof AGENT_STATES)[number];

export const BREAKER_STATES = ["closed", "open", "half_open"] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

export const STRATEGIES = ["weighted_round_robin", "least_connections", "resource_aware", "latency_based"] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** Who acts, as far as a coordinator needs to know to apply the attribute checks. Plain data (RPC, sockets). */
export interface Principal {
  /** The tenant whose tasks are touched (the tenant of the credential). */
  tenant: string;
  /** The bootstrap super-admin: sees and acts across tenants. */
  allTenants: boolean;
  /** Who acts, for agent ownership and the audit trail: "admin" for the bootstrap key, else the API key id. */
  actor: string;
  /** Runs the shared fleet (the operator role): agents it registers serve every tenant; pool-wide configuration. */
  fleetOperator: boolean;
  /** An agent credential: acts only for the agents it registered. */
  agentOnly: boolean;
  /** Presented a client certificate that Cloudflare verified (mTLS). */
  certVerified: boolean;
  /** When the credential stops being valid (a token's expiry); null for keys. A WebSocket lives no longer. */
  expiresAt?: number | null;
}

export interface Requirements {
  capabilities: string[];
  cpu: number;
  memoryMb: number;
  gpu: number;
}

/** A task's error as stored (JSON text on records): a message, a code, and whatever the agent added. */
export interface TaskError {
  message: string;
  code?: string;
  [key: string]: unknown;
}

/** A submission as the coordinator takes it: validated, defaults applied, payload sealed. */
export interface TaskInput {
  /** A task id chosen by the gateway (it names this pool and shard), so an idempotency key can be claimed first. */
  id?: string;
  /** From the payload (read by the gateway before sealing it): the shared state's content mapping and embedding. */
  imageId?: string;
  embedding?: number[];
  /** A cacheable task: its success fills the output cache under this key (contract/cache.ts). */
  cache?: CacheFill;
  /** A workflow step's task: its end is reported to the run (contract/workflows.ts). */
  workflow?: WorkflowRef;
  type: string;
  /** JSON text (an envelope once sealed). */
  payload: string;
  priority: number;
  requires: Requirements;
  idempotencyKey: string | null;
  maxAttempts: number;
  timeoutMs: number;
  delayMs: number;
  dependsOn: string[];
  /** Round robin key inside a priority (tasks/fairness.ts); absent: the tenant. */
  fairnessKey?: string;
  /** At most the pool's limit of this tenant's tasks with this key are queued or leased at once (tasks/gates.ts). */
  concurrencyKey?: string;
  /** At most the pool's `rateLimits[key].limit` leases of this tenant's tasks with this key per `periodMs`. */
  rateLimitKey?: string;
  /** A later submit of the same tenant, type and key replaces this task while it was never leased. */
  debounce?: Debounce;
}

export interface Debounce {
  key: string;
  delayMs: number;
  /** Latest start after the first submit; absent: none. */
  maxWaitMs?: number;
}

interface TaskFields {
  id: string;
  type: string;
  pool: string;
  tenant: string;
  priority: number;
  /** JSON text. */
  payload: string;
  attempts: number;
  maxAttempts: number;
  timeoutMs: number;
  idempotencyKey: string | null;
  dependsOn: string[];
  requires: Requirements;
  /** JSON text, or null while there is no result. */
  result: string | null;
  /** JSON text of a TaskError, or null. */
  error: string | null;
  /** The agent that holds, or last held, the lease. */
  agentId: string | null;
  createdAt: number;
  updatedAt: number;
  runAfter: number | null;
  /** The shard that holds the task now (its id names the one that created it; a drain moves it). */
  shard: number;
  /**
   * An answer left the payload (or result) out: it is kept in R2 and did not fit the answer's size budget
   * (docs/payloads.md). The field is then null; an agent fetches the payload with GET /v1/tasks/:id/payload.
   */
  payloadOmitted?: boolean;
  resultOmitted?: boolean;
}

/** A task, by status: a leased task has its agent and expiry, a final one when it finished. */
export type TaskRecord =
  | (TaskFields & { status: "waiting" | "queued"; finishedAt: null; leaseExpiresAt: null })
  | (TaskFields & { status: "leased"; agentId: string; finishedAt: null; leaseExpiresAt: number })
  | (TaskFields & { status: FinalStatus; finishedAt: number; leaseExpiresAt: null });

/** A task as its lease hands it to an agent: the attempt (1-based) and its fencing token. */
export type LeasedTask = Extract<TaskRecord, { status: "leased" }> & { attempt: number; leaseToken: string };

/** One step of a batch settlement: what an agent reports about one of its leases. */
export type Settlement =
  | { action: "complete"; id: string; leaseToken: string; /** JSON text */ result: string }
  | { action: "fail"; id: string; leaseToken: string; /** JSON text of a TaskError */ error: string; retryable: boolean }
  | { action: "extend"; id: string; leaseToken: string; extendMs: number | null };

/** Codes a single settlement is refused with (nothing changed then); the others refuse the whole batch. */
export type SettlementRefusal = "not_found" | "lease_lost" | "forbidden";

/** How one settlement went: the task's status after it, or why it was refused. */
export type SettlementResult =
  /** `tenant`: the task's, for the audit records of whoever settled it (not part of any response). */
  | { id: string; status: TaskStatus; leaseExpiresAt?: number; tenant: string }
  /** `movedTo`: the task went to that shard in a drain (the gateway settles it there; not part of any response). */
  | { id: string; error: { code: SettlementRefusal; message: string }; movedTo?: number };

export interface AgentLoad {
  currentLoad: number;
  queueDepth: number;
  avgLatencyMs: number;
}

export interface Resources {
  cpu: number;
  memoryMb: number;
  gpu: number;
}

export interface AgentInput {
  agentId: string | null;
  /** Whether this shard is the agent's home (default true); an agent is a member of every shard of its pool. */
  home?: boolean;
  capabilities: string[];
  resources: Resources;
  maxConcurrency: number;
  /** JSON text of an object. */
  metadata: string;
}

export interface AgentRecord {
  agentId: string;
  pool: string;
  /** null: a shared-fleet agent that serves every tenant. */
  tenant: string | null;
  state: AgentState;
  capabilities: string[];
  resources: Resources;
  maxConcurrency: number;
  inFlight: number;
  load: AgentLoad;
  /** JSON text of an object. */
  metadata: string;
  breaker: BreakerState;
  lastHeartbeatAt: number;
  registeredAt: number;
  /** The coordinator's EWMA of this agent's lease-to-completion time; null before its first completion. */
  latencyMs: number | null;
  /** Tasks the mesh may still push to it over its WebSocket. */
  credits: number;
  /** The shard that answered, and whether it is the agent's home (the gateway merges an agent's shards). */
  shard: number;
  home: boolean;
}

/** An agent as a new shard of its pool takes it over from an existing one: who registered it and what it is. */
export interface AgentMember {
  agentId: string;
  tenant: string | null;
  registeredBy: string | null;
  capabilities: string[];
  resources: Resources;
  maxConcurrency: number;
  /** JSON text of an object. */
  metadata: string;
}

/** An agent as registration and heartbeats answer it: with the interval to keep. */
export type AgentWithInterval = AgentRecord & { heartbeatIntervalMs: number };


/** One tenant's own values in a pool (API.md, "Who may change what"), effective. */
export interface TenantValues {
  pool: string;
  tenant: string;
  /** Most unfinished tasks of this tenant in the pool: never above the pool's `maxUnfinishedPerTenant`. */
  maxUnfinished: number;
  /** Fair share of the tenant (1-1000). */
  weight: number;
  /** GPU-seconds the tenant may use per hour; null: no limit. */
  gpuSecondsPerHour: number | null;
}

/** A change of one tenant's values: what the caller asked for (the coordinator checks who may set what). */
export interface TenantValuesPatch {
  maxUnfinished?: number;
  weight?: number;
  gpuSecondsPerHour?: number | null;
}

export type StatusCounts = Record<TaskStatus, number>;
export type AgentCounts = Record<AgentState, number>;

export interface PoolStats {
  pool: string;
  queue: StatusCounts;
  agents: AgentCounts;
  throughput: { windowSeconds: number; submittedPerSec: number; leasedPerSec: number; succeededPerSec: number; failedPerSec: number };
  latencyMs: { p50: number | null; p99: number | null; windowSeconds: number; samples: number };
}

/** One shard's stats, with what the Worker needs to add shards up (the histogram behind the latency quantiles). */
export interface ShardStats extends PoolStats {
  shard: number;
  /** Submit-to-success durations of the latency window, by bucket of lib/histogram.ts. */
  latencyCounts: number[];
}

/** Everything /metrics needs from one pool shard, read in one call. */
export interface PoolMetrics {
  pool: string;
  /** Output cache lookups and fills (contract/cache.ts). */
  cache: CacheCount[];
  /** The shard that answered (the Worker adds a pool's shards up). */
  shard: number;
  /** Submit routing decisions this shard received, by reason (src/mesh/routing.ts). */
  routing: Partial<Record<RouteReason, number>>;
  tasks: { tenant: string; status: TaskStatus; count: number }[];
  agents: AgentCounts;
  /** Circuit breaker state of each agent. */
  breakers: { agentId: string; breaker: BreakerState }[];
  counters: Record<string, number>;
  /** Cumulative histogram of submit-to-success time: upper bounds in ms (last is +Inf) and counts. */
  duration: { bounds: number[]; counts: number[]; sumMs: number; count: number };
  /** Held task-seconds and GPU-seconds per tenant since the shard began (contract/usage.ts). */
  usage?: TenantUsageTotal[];
}

/** What a submit did with one input: the task, and whether it is new (false: an idempotent repeat). */
export interface SubmitOutcome {
  task: TaskRecord;
  created: boolean;
}

/** A page of tasks in submission order; `cursor` continues it (null: the last page). */
export interface ListPage {
  tasks: TaskRecord[];
  cursor: string | null;
  /** The shard's cursor after each task (the Worker's merged cursor over shards moves by these; not in answers). */
  after?: string[];
}

export interface RedriveOutcome {
  redriven: number;
  /** Ids that were not dead, not found, or whose dependency is dead. */
  skipped: string[];
}

/** An API key as the API shows it: never the secret, which exists only in the creation answer. */
export interface KeyRecord {
  id: string;
  tenant: string;
  name: string;
  roles: Role[];
  /** The pool an agent key is bound to. */
  pool: string | null;
  createdAt: number;
  revokedAt: number | null;
}

// ---- shards (API.md, "Shards, routing and shared state") ------------------------------------------------------

/** Durable Object location hints: where a shard's coordinator is created on Cloudflare (ignored by wrangler dev). */
export const REGIONS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;
export type Region = (typeof REGIONS)[number];

export const SHARD_STATES = ["active", "draining", "retired"] as const;
export type ShardState = (typeof SHARD_STATES)[number];

export interface ShardRecord {
  /** 0, 1, ...: never reused. */
  id: number;
  region: Region | null;
  state: ShardState;
  createdAt: number;
}

/** A pool's shards as the directory holds them; `version` goes up with every change. */
export interface ShardList {
  pool: string;
  version: number;
  shards: ShardRecord[];
}

/**
 * Why the Worker sent a task to the shard it did: the only active shard, the lowest expected time to start, the
 * caller's region among tied shards, rotation among exact ties, avoiding a failing shard, or a retry after a shard
 * refused (it drains, or the tenant's share of the quota there is used up), or the shard of its dependencies.
 */
export const ROUTE_REASONS = ["only", "latency", "region", "rotation", "avoiding", "retry", "dependency", "key"] as const;
export type RouteReason = (typeof ROUTE_REASONS)[number];

/** What a shard says of its load on every answer: the router's expected wait is queued over drain rate. */
export interface ShardLoad {
  shard: number;
  /** Tasks ready to lease now. */
  queued: number;
  /** Tasks leased per second lately (the last 20 s, or since the first lease in them; 0: none measured). */
  drainPerSec: number;
  /** Room the running agents have here (their concurrency less the tasks leased here): that many start at once. */
  freeSlots: number;
  /** Running agents homed here. */
  agents: number;
  /** When the shard measured this (ms since the epoch): a load heard through gossip is older. */
  at: number;
}
