/**
 * One pool shard's state and rules, over its SQLite storage: the stores (tasks, agents, lanes, tenants, counters)
 * plus the operations that span them, and the timer kinds they register on the object's alarm. Synchronous
 * throughout: the shell (shell.ts) runs each call as one transaction and handles the rest.
 */
import { ApiError } from "../../contract/errors.ts";
import { ROUTE_REASONS } from "../../contract/records.ts";
import type { Emit } from "../../contract/events.ts";
import type {
  AgentInput,
  AgentLoad,
  AgentRecord,
  AgentState,
  LeasedTask,
  PoolConfig,
  PoolConfigPatch,
  Principal,
  Settlement,
  SettlementResult,
  RouteReason,
  ShardList,
  ShardLoad,
  SubmitOutcome,
  TaskInput,
  TenantValues,
  TenantValuesPatch,
} from "../../contract/records.ts";
import { ShardPeers } from "./shard/peers.ts";
import type { MovingTask, PoolSnapshot } from "../../contract/shard-rpc.ts";
import { applySnapshot, takeSnapshot } from "./shard/snapshot.ts";
import { GossipStore } from "./gossip/store.ts";
import { random01 } from "../../lib/random.ts";
import type { Timers } from "../shared/timers.ts";
import { AgentStore } from "./agents/index.ts";
import type { RoundRobinState } from "./agents/balancing.ts";
import { concurrencyLimit, DEFAULT_CONFIG, mergeConfig } from "./config.ts";
import { pushRound } from "./dispatch.ts";
import { LaneStore } from "./lanes.ts";
import { migrate } from "./schema.ts";
import { StatsStore } from "./stats.ts";
import type { StatusCountDeltas } from "./tasks/counts.ts";
import { TaskStore } from "./tasks/index.ts";
import { CacheFills } from "./cache/fills.ts";
import { BlobDeletes } from "./blobs/deletes.ts";
import { WorkflowCallbacks } from "./workflows/callbacks.ts";
import { PoolTenants } from "./tenants.ts";
import { UsageLedger } from "./usage/ledger.ts";
import { checkGpuQuota } from "./usage/gpu-quota.ts";

export { poolNotFound } from "./tenants.ts";

/** How often a pool that could not reach the directory tries again. */
export const LISTING_RETRY_MS = 5_000;
/** Tasks a draining shard hands over per alarm chunk, and how often it looks again while leases finish. */
export const DRAIN_BATCH = 200;
export const DRAIN_RECHECK_MS = 2_000;
/** How long the load summary of a shard is reused before it is read again. */
const LOAD_FRESH_MS = 500;

/** The host slice of a pool shard's state: its storage, name, event sink and timers. */
export interface PoolHost {
  sql: SqlStorage;
  pool: string;
  shard: number;
  emit: Emit;
  timers: Timers;
  random01?: () => number;
}

export class PoolCore {
  readonly pool: string;
  readonly shard: number;
  readonly lanes: LaneStore;
  readonly stats: StatsStore;
  readonly tasks: TaskStore;
  readonly agents: AgentStore;
  readonly tenants: PoolTenants;
  /** The pool's other shards, and whether this one drains. */
  readonly peers: ShardPeers;
  /** Tasks by tenant and status (the task store keeps them). */
  readonly counts: StatusCountDeltas;
  private readonly sql: SqlStorage;
  private cachedConfig: PoolConfig | null = null;

  /** The shard's copy of the shared state (gossip/store.ts), and when its next exchange round is due. */
  readonly gossip: GossipStore;
  readonly gossipClock = { last: 0, due: false };
  /** The output cache's outbox (cache/fills.ts). */
  readonly cacheFills: CacheFills;
  /** R2 objects of purged tasks to delete (blobs/deletes.ts). */
  readonly blobDeletes: BlobDeletes;
  /** Ends of workflow tasks to report to their runs (workflows/callbacks.ts). */
  readonly workflowCallbacks: WorkflowCallbacks;
  /** Held task-seconds and GPU-seconds per tenant and hour (usage/ledger.ts). */
  readonly usage: UsageLedger;

  constructor(host: PoolHost) {
    const { sql, pool, shard, timers } = host;
    this.gossip = new GossipStore(sql, shard + 1);
    this.cacheFills = new CacheFills(sql);
    this.blobDeletes = new BlobDeletes(sql, timers.set);
    this.usage = new UsageLedger(sql);
    // A success feeds the shared state's content mappings (for tasks submitted with an imageId).
    const emit: Emit = (event) => {
      if (event.type === "task_finished") {
        if (event.status === "succeeded") this.gossip.noteSucceeded(event.id);
        this.cacheFills.noteFinished(event.id, event.status);
        this.workflowCallbacks.noteFinished(event.id, event.status);
      }
      host.emit(event);
    };
    this.sql = sql;
    this.pool = pool;
    this.shard = shard;
    this.lanes = new LaneStore(sql);
    this.stats = new StatsStore(sql);
    this.tenants = new PoolTenants(sql, pool, () => this.config());
    this.peers = new ShardPeers(sql, pool, shard);
    this.tasks = new TaskStore(sql, this.lanes, this.stats, emit, timers.set, {
      pool,
      shard,
      random01: host.random01 ?? random01,
      retentionMs: () => this.config().retentionMs,
      scheduling: () => this.config().scheduling,
      concurrencyLimit: (key) => concurrencyLimit(this.config(), key),
      rateLimit: (key) => this.config().rateLimits[key] ?? null,
      // Each active shard enforces its share of the tenant's quota (the gateway tries another when one is full).
      maxUnfinished: (tenant) => Math.ceil(this.tenants.maxUnfinished(tenant) / this.peers.activeCount()),
      quotaShards: () => this.peers.activeCount(),
      mayActForAgent: (principal, agentId) => this.agents.mayActFor(principal, agentId),
      agentOutcome: (agentId, ok, latencyMs) => this.agents.outcome(agentId, ok, latencyMs),
      blobsReleased: (keys, now) => this.blobDeletes.add(keys, now),
      leaseEnded: (lease) => this.usage.note(lease),
    });
    this.counts = this.tasks.counts;
    this.workflowCallbacks = new WorkflowCallbacks(sql, (id) => this.tasks.record(id), timers.set);
    this.agents = new AgentStore({ sql, pool, shard, inFlight: (agentId) => this.tasks.inFlight(agentId), config: () => this.config(), timer: timers.set, emit });
    // Agents first: a failed agent's leases go back before the tasks' own deadlines are looked at.
    timers.register({ name: "agents", next: () => this.agents.nextTimer(), run: (now, limit) => this.agents.runTimers(now, limit, (agentId) => this.tasks.releaseAgent(agentId, `agent ${agentId} missed its heartbeats`, now)) });
    timers.register({ name: "tasks", next: () => this.tasks.nextTimer(), run: (now, limit) => this.tasks.runTimers(now, limit) });
    // Rate keys whose window has room again (tasks/gates.ts).
    timers.register({ name: "rate_keys", next: () => this.tasks.gates.nextWake(), run: (now, limit) => this.tasks.gates.runWakes(now, limit) });
    // The listing itself is a call to the directory, made after the commit (shell.ts); this kind keeps the alarm
    // coming back while a tenant waits to be listed.
    timers.register({ name: "listing", next: (now) => (this.tenants.anyUnlisted() ? now + LISTING_RETRY_MS : null), run: () => 0 });
    // A draining shard hands its movable tasks to the active shards a chunk at a time (the hand-over itself is an
    // RPC made after the commit, shard/drain.ts), and looks again while leases finish, until it can retire.
    timers.register({
      name: "drain",
      // A retired shard still hands over what becomes movable there (dead tasks redriven), but waits for nothing else.
      next: (now) => {
        if (!this.peers.draining) return null;
        if (this.tasks.movable() || this.tasks.outboxSize() > 0) return now;
        return this.peers.self().state === "retired" ? null : now + DRAIN_RECHECK_MS;
      },
      run: (now, limit) => (this.peers.draining ? this.tasks.exportMovable(this.peers.activePeers().map((p) => p.id), Math.min(limit, DRAIN_BATCH), now) : 0),
    });
    // Cache fills that failed wait here for their next try; the fill itself runs after the commit (cache/filler.ts).
    timers.register({ name: "cache", next: () => this.cacheFills.next(), run: () => ((this.cacheFills.due = true), 0) });
    // R2 deletes of purged tasks' payloads and results wait here when they failed (blobs/runner.ts runs them).
    timers.register({ name: "blobs", next: () => this.blobDeletes.next(), run: (now) => ((this.blobDeletes.due ||= (this.blobDeletes.next() ?? Infinity) <= now), 0) });
    // Workflow callbacks that failed wait here; the report itself is an RPC after the commit (workflows/notifier.ts).
    timers.register({ name: "workflows", next: () => this.workflowCallbacks.next(), run: (now) => ((this.workflowCallbacks.due ||= (this.workflowCallbacks.next() ?? Infinity) <= now), 0) });
    timers.register({ name: "forwarding", next: () => this.tasks.nextForwardingPurge(), run: (now, limit) => this.tasks.purgeForwarding(now, limit) });
    // Anti-entropy with the pool's other shards while there are any: the round itself is RPCs after the commit.
    timers.register({
      name: "gossip",
      next: () => (this.peers.current().shards.filter((s) => s.state !== "retired").length > 1 ? this.gossipClock.last + this.config().gossip.intervalMs : null),
      run: (now) => {
        this.gossipClock.due = true;
        this.gossipClock.last = now;
        return 0;
      },
    });
    this.timers = timers;
  }

  private readonly timers: Timers;
  private cachedLoad: { at: number; load: ShardLoad } | null = null;

  /** The load summary every answer carries (queued work, drain rate, agents), read at most every 500 ms. */
  load(now: number): ShardLoad {
    if (this.cachedLoad && now - this.cachedLoad.at < LOAD_FRESH_MS) return this.cachedLoad.load;
    const counts = this.sql.exec<{ queued: number | null; leased: number | null }>(
      "SELECT sum(CASE WHEN status = 'queued' THEN n END) AS queued, sum(CASE WHEN status = 'leased' THEN n END) AS leased FROM status_counts",
    ).one();
    const agents = this.sql.exec<{ home: number | null; slots: number | null }>("SELECT sum(home) AS home, sum(max_concurrency) AS slots FROM agents WHERE state = 'running'").one();
    const freeSlots = Math.max(0, (agents.slots ?? 0) - (counts.leased ?? 0));
    const load = { shard: this.shard, queued: counts.queued ?? 0, drainPerSec: this.stats.drainRate(now), freeSlots, agents: agents.home ?? 0, at: now };
    this.cachedLoad = { at: now, load };
    return load;
  }

  /** How many more unfinished tasks the tenant may have on this shard (its share of the quota, less what it has). */
  quotaRoom(tenant: string): number {
    return Math.ceil(this.tenants.maxUnfinished(tenant) / this.peers.activeCount()) - this.tasks.counts.unfinishedOf(tenant);
  }

  /** The pool's shard list from the Worker. A shard told it drains starts handing its tasks over. */
  updatePeers(list: ShardList, now: number): ShardList {
    // A new list may start gossip (a second shard) or a drain: the alarm looks at once.
    if (this.peers.update(list)) this.timers.set(now);
    return this.peers.current();
  }

  /** What a new shard of the pool copies from this one. */
  snapshot(): PoolSnapshot {
    return takeSnapshot(this, this.sql);
  }

  /** Becomes a shard of the snapshot's pool (a new shard, right after it was added). */
  joinPool(snapshot: PoolSnapshot, now: number): void {
    applySnapshot(this, this.sql, snapshot, now);
    this.cachedConfig = null;
    this.tenants.discard();
  }

  /** Tasks another shard hands over in a drain (their ids kept; one seen before is skipped). */
  adopt(tasks: readonly MovingTask[], now: number): number {
    return this.tasks.adopt(tasks, now);
  }

  /** Creates or upgrades the schema and records when the pool began. Call inside a transaction. */
  static initialize(sql: SqlStorage, now: number): void {
    migrate(sql);
    sql.exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)", String(now));
  }

  // ---- configuration --------------------------------------------------------------------------------------

  config(): PoolConfig {
    if (this.cachedConfig === null) {
      const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'config'").toArray()[0];
      this.cachedConfig = row ? mergeConfig(DEFAULT_CONFIG, JSON.parse(row.value) as PoolConfigPatch) : DEFAULT_CONFIG;
    }
    return this.cachedConfig;
  }

  /**
   * Pool-wide configuration changes the pool for every tenant: only operators and the bootstrap key may change it.
   * A config is a first write like any other, but an operator cannot reconfigure a pool only other tenants use:
   * it answers 404 as for every other pool-level call of theirs.
   */
  updateConfig(principal: Principal, patch: PoolConfigPatch, now: number): PoolConfig {
    this.firstWrite(principal, now);
    if (!principal.allTenants && !principal.fleetOperator) {
      throw new ApiError("forbidden", `the configuration of pool ${this.pool} applies to every tenant: only an operator may change it`);
    }
    const next = mergeConfig(this.config(), patch);
    this.sql.exec("INSERT INTO meta (key, value) VALUES ('config', ?1) ON CONFLICT (key) DO UPDATE SET value = ?1", JSON.stringify(next));
    this.cachedConfig = next;
    // A limit raised or removed: held tasks it has room for now are queued.
    if (patch.concurrency !== undefined || patch.rateLimits !== undefined) {
      this.tasks.gates.now = now;
      this.tasks.gates.limitsChanged();
    }
    return next;
  }

  tenantValues(principal: Principal, tenant: string): TenantValues {
    return this.tenants.get(principal, tenant);
  }

  updateTenantValues(principal: Principal, tenant: string, patch: TenantValuesPatch, now: number): TenantValues {
    this.firstWrite(principal, now);
    return this.tenants.update(principal, tenant, patch);
  }

  /** A write that may bring the pool into existence: on a pool others use, the caller must see it (404). */
  private firstWrite(principal: Principal, now: number): void {
    if (!this.tenants.fresh()) this.tenants.require(principal);
    this.tenants.touch(principal, now);
  }

  /** Writes what the transaction gathered in memory (counters, agent outcomes). Call at its end, inside it. */
  flush(now: number): void {
    this.gossip.flush(now);
    this.cacheFills.flush(now);
    this.workflowCallbacks.flush(now);
    this.usage.flush(now);
    this.agents.flushOutcomes(now);
    this.stats.flush(now);
    this.tasks.counts.flush();
  }

  /** Forgets caches after a rolled-back transaction. */
  discardCaches(): void {
    this.cachedConfig = null;
    this.stats.discard();
    this.agents.discardOutcomes();
    this.lanes.reload();
    this.tasks.counts.discard();
    this.peers.discard();
    this.gossip.discard();
    this.cacheFills.discard();
    this.workflowCallbacks.discard();
    this.usage.discard();
    this.cachedLoad = null;
    // A tenant first seen by the rolled-back transaction is not in the table after all.
    this.tenants.discard();
  }

  /** Agent operations in a pool that requires mTLS need a verified client certificate. */
  requireCertificate(principal: Principal): void {
    if (this.config().requireClientCert && !principal.certVerified) {
      throw new ApiError("forbidden", `pool ${this.pool} requires agents to present a client certificate that Cloudflare verified`);
    }
  }

  // ---- tasks ------------------------------------------------------------------------------------------------

  submit(principal: Principal, inputs: readonly TaskInput[], now: number, routed?: Partial<Record<RouteReason, number>>): SubmitOutcome[] {
    this.peers.refuseIfDraining();
    this.peers.refuseUnclaimedKeys(inputs);
    this.tenants.touch(principal, now);
    const gpuIndexes = inputs.flatMap((input, i) => (input.requires.gpu > 0 ? [i] : []));
    const where = { pool: this.pool, shard: this.shard, shards: this.peers.activeCount() };
    checkGpuQuota(this.sql, this.usage, where, principal.tenant, this.tenants.effective(principal.tenant).gpuSecondsPerHour, gpuIndexes, now);
    const outcomes = this.tasks.submit(principal, inputs, now);
    outcomes.forEach((o, i) => {
      const input = inputs[i]!;
      if (o.created && (input.imageId !== undefined || input.embedding !== undefined)) this.gossip.submitted(o.task.id, input.imageId, input.embedding);
      if (o.created && input.cache) {
        this.cacheFills.submitted(o.task.id, input.type, input.cache);
        this.stats.count(`cache.miss ${input.type}`, 1);
      }
      if (o.created && input.workflow) this.workflowCallbacks.submitted(o.task.id, input.workflow);
    });
    for (const reason of ROUTE_REASONS) this.stats.count(`routed.${reason}`, routed?.[reason] ?? 0);
    return outcomes;
  }

  settle(principal: Principal, items: readonly Settlement[], now: number): SettlementResult[] {
    this.requireCertificate(principal);
    return this.tasks.settle(principal, items, now);
  }

  // ---- agents and leases ----------------------------------------------------------------------------------

  registerAgent(principal: Principal, input: AgentInput, now: number): AgentRecord {
    this.requireCertificate(principal);
    this.tenants.touch(principal, now);
    return this.agents.register(principal, input, now);
  }

  heartbeat(principal: Principal, agentId: string, load: AgentLoad | null, now: number): AgentRecord {
    this.requireCertificate(principal);
    return this.agents.heartbeat(principal, agentId, load, now);
  }

  /** Leases up to `max` tasks to a running agent within its free concurrency. Polling for work is a sign of life. */
  lease(principal: Principal, agentId: string, max: number, now: number): LeasedTask[] {
    this.requireCertificate(principal);
    this.agents.get(principal, agentId);
    this.agents.seen(agentId, null, now);
    const row = this.agents.row(agentId)!;
    return this.tasks.lease(this.agents.fit(row), Math.min(max, this.agents.room(row)), now);
  }

  /** A push round over these connected agents (dispatch.ts). */
  dispatch(connected: ReadonlySet<string>, rr: RoundRobinState, now: number): Map<string, LeasedTask[]> {
    return pushRound(this, this.config().strategy, connected, rr, now);
  }

  /** A lifecycle change; an agent that fails gives its leases back, a terminating one leaves once idle. */
  transitionAgent(principal: Principal, agentId: string, to: AgentState, now: number): AgentRecord {
    const agent = this.agents.transition(principal, agentId, to);
    if (to === "failed") {
      this.tasks.releaseAgent(agentId, `agent ${agentId} failed`, now);
      return this.agents.get(principal, agentId);
    }
    if (to === "terminating") this.agents.reapTerminating([agentId]);
    return agent;
  }

  /** Deletes an agent; its leased tasks go back to the queue at once (each a failed attempt). */
  deleteAgent(principal: Principal, agentId: string, now: number): void {
    this.agents.remove(principal, agentId);
    this.tasks.releaseAgent(agentId, `agent ${agentId} was deleted`, now);
  }
}
