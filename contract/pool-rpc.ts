/**
 * The operations of a pool shard's coordinator, independent of how it stores them (as BullMQ states its queue
 * semantics in `IQueueBackend`). `PoolCoordinator implements PoolRpc`; the Worker's gateway (src/mesh/gateway.ts)
 * is the only caller. Each operation is one SQLite transaction of the shard (a long poll: one per try), and every
 * refusal is an error outcome in the vocabulary of ./errors.ts, never a thrown exception. Payloads and results
 * cross as sealed JSON text (lib/security/sealing.ts).
 *
 * Each header says: inputs, outputs, state changes. "404 pool" means the shard was never written to: reads and
 * settlements do not bring a pool into existence, submits, registrations and configuration do.
 */
import type { Outcome } from "./errors.ts";
import type { PoolUsage } from "./usage.ts";
import type { AgentCounts, AgentInput, AgentLoad, AgentRecord, AgentState, AgentWithInterval, LeasedTask, ListPage, PoolConfig, PoolConfigPatch, PoolMetrics, Principal, RedriveOutcome, RouteReason, ShardLoad, ShardStats, Settlement, SettlementResult, StatusCounts, SubmitOutcome, TaskInput, TaskRecord, TaskStatus, TenantValues, TenantValuesPatch } from "./records.ts";

export interface PoolRpc {
  // ---- tasks ------------------------------------------------------------------------------------------------

  /**
   * Submit tasks in input order. In: sealed inputs; optional plaintexts (same order, memory only, spare a decrypt
   * when a task is pushed at once). Out: per input the task and whether it is new (`created: false` for a repeated
   * idempotency key of the tenant). Changes: inserts queued or waiting tasks (dead at once when a dependency is
   * dead or cancelled); creates the pool. Refuses as a whole: 400 unknown dependency (details index the inputs),
   * 429 quota (`details.scope = "quota"`). With the outcome: the shard's load summary, and `room`, how many more
   * unfinished tasks the tenant may have there (the gateway skips a quota check where there is plenty).
   */
  submit(principal: Principal, inputs: TaskInput[], plaintexts?: string[], routed?: Partial<Record<RouteReason, number>>): Promise<Outcome<SubmitOutcome[]> & { load?: ShardLoad; room?: number }>;

  /** Whether tasks with these idempotency keys (null: none) fit the tenant's quota. Out: null, or 429. Changes nothing. */
  checkQuota(principal: Principal, idempotencyKeys: (string | null)[]): Promise<Outcome<null>>;

  /** Which of these ids name no task of the tenant here. Changes nothing; a pool not yet written: all of them. */
  missingDependencies(principal: Principal, ids: string[]): Promise<Outcome<string[]>>;

  /**
   * One task the principal may see. 404 unknown task (or another tenant's), 404 pool. With `leaseToken`: only while
   * that is the task's current, unexpired lease and the principal may settle it (409 lease_lost otherwise), as an
   * agent fetching a payload that was left out of its lease (GET /v1/tasks/:id/payload). Changes nothing.
   */
  getTask(principal: Principal, id: string, leaseToken?: string): Promise<Outcome<TaskRecord>>;

  /** The task once final, waiting up to `waitMs` for it; out: the task, final or not. Changes nothing. */
  waitResult(principal: Principal, id: string, waitMs: number): Promise<Outcome<TaskRecord>>;

  /** Cancel an unfinished task (a leased one loses its lease); dependents die. 409 when already final. */
  cancel(principal: Principal, id: string): Promise<Outcome<TaskRecord>>;

  /**
   * Complete the current lease. In: `result` as JSON text, sealed here with the task tenant's key. Out: the task,
   * succeeded. Changes: leased -> succeeded; dependents move on. 409 lease_lost for a token that is not current
   * or has expired; 403 in a pool that requires client certificates without one.
   */
  complete(principal: Principal, id: string, leaseToken: string, result: string): Promise<Outcome<TaskRecord>>;

  /**
   * Fail the current attempt. In: the agent's error as JSON text. Changes: leased -> waiting (backoff) or dead
   * (attempts used up, or not retryable). 409 lease_lost as for complete.
   */
  fail(principal: Principal, id: string, leaseToken: string, errorJson: string, retryable: boolean): Promise<Outcome<TaskRecord>>;

  /** Extend the current lease to now + `extendMs` (null: the task's timeout). Out: the new expiry. 409 lease_lost. */
  extend(principal: Principal, id: string, leaseToken: string, extendMs: number | null): Promise<Outcome<number>>;

  /**
   * Complete, fail or extend many leases of this shard in one transaction. Out: one result per item in order; a
   * refused item (not_found, lease_lost) changes nothing and does not stop the others. Refuses as a whole only
   * for 404 pool and 403 (client certificate).
   */
  settle(principal: Principal, items: Settlement[]): Promise<Outcome<SettlementResult[]>>;

  /** A page of tasks in submission order, optionally of one status. 400 bad cursor, 404 pool. Changes nothing. */
  listTasks(principal: Principal, status: TaskStatus | null, limit: number, cursor: string | null): Promise<Outcome<ListPage>>;

  /** Dead tasks (these ids, or all the principal sees) back to the queue with attempts reset, a thousand per transaction. */
  redrive(principal: Principal, ids: string[] | null): Promise<Outcome<RedriveOutcome>>;

  // ---- agents -----------------------------------------------------------------------------------------------

  /** Register (or re-register, keeping leases) an agent; it goes to running. Creates the pool. 409 id taken. */
  registerAgent(principal: Principal, input: AgentInput): Promise<Outcome<AgentWithInterval>>;

  getAgent(principal: Principal, agentId: string): Promise<Outcome<AgentRecord>>;

  listAgents(principal: Principal): Promise<Outcome<AgentRecord[]>>;

  /** A lifecycle change; 409 invalid_transition for a pair the lifecycle does not allow. A failed agent's leases go back. */
  transitionAgent(principal: Principal, agentId: string, to: AgentState): Promise<Outcome<AgentRecord>>;

  /** Remove an agent; its leased tasks go back to the queue at once (each a failed attempt); its sockets close. */
  deleteAgent(principal: Principal, agentId: string): Promise<Outcome<null>>;

  /** A sign of life with the agent's load; a failed agent steps back through recovering to running. */
  heartbeat(principal: Principal, agentId: string, load: AgentLoad | null): Promise<Outcome<AgentWithInterval>>;

  /**
   * Lease up to `max` ready tasks the agent fits, within its free concurrency and breaker; with nothing to do,
   * wait up to `waitMs` for work. Changes: queued -> leased, each with a fresh fencing token.
   */
  lease(principal: Principal, agentId: string, max: number, waitMs: number): Promise<Outcome<LeasedTask[]>>;

  /** Close the sockets opened with this API key or a token from it (it was revoked). Out: how many. */
  closeSocketsOfKey(keyId: string): Promise<number>;

  // ---- the pool ---------------------------------------------------------------------------------------------

  getConfig(principal: Principal): Promise<Outcome<PoolConfig>>;

  /** Merge a patch into the pool-wide configuration: operators and the bootstrap key only (403 otherwise). */
  updateConfig(principal: Principal, patch: PoolConfigPatch): Promise<Outcome<PoolConfig>>;

  /** One tenant's effective values in the pool (404 for another tenant's non-operator credential). */
  getTenantValues(principal: Principal, tenant: string): Promise<Outcome<TenantValues>>;

  /**
   * Change one tenant's values. `maxUnfinished` never above the pool's ceiling (400); a tenant's admin may set only
   * its own `maxUnfinished`, and not above what an operator granted (403); `weight` and `gpuSecondsPerHour` are
   * the operators'. Creates the pool.
   */
  updateTenantValues(principal: Principal, tenant: string, patch: TenantValuesPatch): Promise<Outcome<TenantValues>>;

  stats(principal: Principal): Promise<Outcome<ShardStats>>;

  counts(principal: Principal): Promise<Outcome<{ queue: StatusCounts; agents: AgentCounts }>>;

  metrics(principal: Principal): Promise<Outcome<PoolMetrics>>;

  /**
   * The tenant's usage on this shard over the hour buckets that overlap [from, to) (ms); null when it has none
   * (or the shard was never written to). The Worker checks who may read it. Changes nothing.
   */
  usage(principal: Principal, tenant: string, from: number, to: number): Promise<Outcome<PoolUsage | null>>;
}

/**
 * An agent's WebSocket reaches its coordinator as an upgrade over `fetch` (sockets cannot cross RPC). The
 * Worker's connect route authenticates and authorises the caller, then forwards the upgrade with these headers;
 * nothing else reaches the coordinator's `fetch`. A refusal comes back as an error answer of the contract.
 */
export const SOCKET_UPGRADE_HEADERS = {
  /** JSON of the caller's Principal. */
  principal: "x-daa-principal",
  agent: "x-daa-agent",
  /** The audit trail's name of the caller. */
  actor: "x-daa-actor",
} as const;
