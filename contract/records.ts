/**
 * The records the parts of the mesh exchange: who acts (Principal), tasks, agents, settlements, pool
 * configuration and statistics. Payloads and results are opaque JSON text here (sealed at rest, see
 * lib/security/sealing.ts); the Worker parses them for clients. Times are milliseconds since the epoch.
 */

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
  | { id: string; error: { code: SettlementRefusal; message: string } };

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
}

/** An agent as registration and heartbeats answer it: with the interval to keep. */
export type AgentWithInterval = AgentRecord & { heartbeatIntervalMs: number };

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
}

/** A change of pool configuration: any subset of the fields; nested objects merge field by field. */
export type PoolConfigPatch = Partial<Omit<PoolConfig, "breaker">> & { breaker?: Partial<PoolConfig["breaker"]> };

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

/** Everything /metrics needs from one pool shard, read in one call. */
export interface PoolMetrics {
  pool: string;
  tasks: { tenant: string; status: TaskStatus; count: number }[];
  agents: AgentCounts;
  /** Circuit breaker state of each agent. */
  breakers: { agentId: string; breaker: BreakerState }[];
  counters: Record<string, number>;
  /** Cumulative histogram of submit-to-success time: upper bounds in ms (last is +Inf) and counts. */
  duration: { bounds: number[]; counts: number[]; sumMs: number; count: number };
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
