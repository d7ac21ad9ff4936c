/**
 * The pool coordinator's domain types: what its RPC methods take and answer. Payloads and results are
 * opaque JSON text here; the Worker parses them for clients (and, later, encrypts them at rest).
 */
export const TASK_STATUSES = ["waiting", "queued", "leased", "succeeded", "dead", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const FINAL_STATUSES: readonly TaskStatus[] = ["succeeded", "dead", "cancelled"];

export const AGENT_STATES = [
  "pending",
  "initializing",
  "running",
  "paused",
  "scaling",
  "terminating",
  "failed",
  "recovering",
] as const;
export type AgentState = (typeof AGENT_STATES)[number];

/** Who acts, as far as a coordinator needs to know to apply the attribute checks. */
export interface Principal {
  /** The tenant whose tasks are touched (the tenant of the credential). */
  tenant: string;
  /** The bootstrap super-admin: sees and acts across tenants. */
  allTenants: boolean;
  /** Who acts, for agent ownership and the audit trail: "admin" for the bootstrap key, else the API key id. */
  actor: string;
  /** Runs the shared fleet: agents it registers serve every tenant, and it may act for shared agents. */
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

export interface TaskInput {
  type: string;
  /** JSON text. */
  payload: string;
  priority: number;
  requires: Requirements;
  idempotencyKey: string | null;
  maxAttempts: number;
  timeoutMs: number;
  delayMs: number;
  dependsOn: string[];
}

export interface TaskRecord {
  id: string;
  type: string;
  pool: string;
  tenant: string;
  status: TaskStatus;
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
  agentId: string | null;
  createdAt: number;
  updatedAt: number;
  runAfter: number | null;
  finishedAt: number | null;
  /** Set while leased. */
  leaseExpiresAt: number | null;
}

/** One step of a batch settlement: what an agent reports about one of its leases. */
export type Settlement =
  | { action: "complete"; id: string; leaseToken: string; /** JSON text */ result: string }
  | { action: "fail"; id: string; leaseToken: string; /** JSON text of a TaskError */ error: string; retryable: boolean }
  | { action: "extend"; id: string; leaseToken: string; extendMs: number | null };

/** How one settlement went: the task's status after it, or why it was refused (nothing changed then). */
export type SettlementResult =
  /** `tenant`: the task's, for the audit records of whoever settled it (not part of any response). */
  | { id: string; status: TaskStatus; leaseExpiresAt?: number; tenant: string }
  | { id: string; error: { code: "not_found" | "lease_lost" | "forbidden"; message: string } };

export interface LeasedTask extends TaskRecord {
  attempt: number;
  leaseToken: string;
  leaseExpiresAt: number;
}

export interface AgentLoad {
  currentLoad: number;
  queueDepth: number;
  avgLatencyMs: number;
}

export interface AgentInput {
  agentId: string | null;
  capabilities: string[];
  resources: { cpu: number; memoryMb: number; gpu: number };
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
  resources: { cpu: number; memoryMb: number; gpu: number };
  maxConcurrency: number;
  inFlight: number;
  load: AgentLoad;
  /** JSON text of an object. */
  metadata: string;
  breaker: "closed" | "open" | "half_open";
  lastHeartbeatAt: number;
  registeredAt: number;
  /** The coordinator's EWMA of this agent's lease-to-completion time; null before its first completion. */
  latencyMs: number | null;
  /** Tasks the mesh may still push to it over its WebSocket. */
  credits: number;
}

export interface PoolConfig {
  strategy: "weighted_round_robin" | "least_connections" | "resource_aware" | "latency_based";
  heartbeatIntervalMs: number;
  missedHeartbeats: number;
  failedAgentTtlMs: number;
  breaker: { failureThreshold: number; cooldownMs: number };
  /** How long finished tasks are kept before the alarm purges them. */
  retentionMs: number;
  /** Most unfinished (waiting, queued, leased) tasks one tenant may have in this pool. */
  maxUnfinishedPerTenant: number;
  /** Agent operations need a client certificate that Cloudflare verified (mTLS). */
  requireClientCert: boolean;
}

export type StatusCounts = Record<TaskStatus, number>;

export interface PoolStats {
  pool: string;
  queue: StatusCounts;
  agents: Record<AgentState, number>;
  throughput: { windowSeconds: number; submittedPerSec: number; leasedPerSec: number; succeededPerSec: number; failedPerSec: number };
  latencyMs: { p50: number | null; p99: number | null; windowSeconds: number; samples: number };
}

/** Everything /metrics needs from one pool, read in one call. */
export interface PoolMetrics {
  pool: string;
  tasks: { tenant: string; status: TaskStatus; count: number }[];
  agents: Record<AgentState, number>;
  /** Circuit breaker state of each agent. */
  breakers: { agentId: string; breaker: "closed" | "open" | "half_open" }[];
  counters: Record<string, number>;
  /** Cumulative histogram of submit-to-success time: upper bounds in ms (last is +Inf) and counts. */
  duration: { bounds: number[]; counts: number[]; sumMs: number; count: number };
}
