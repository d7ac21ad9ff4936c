import { ApiError } from "../../src/shared/errors";
import { AgentStore } from "./agents";
import { DEFAULT_CONFIG, mergeConfig, type PoolConfigPatch } from "./config";
import { random01 } from "./ids";
import { LaneStore } from "./lanes";
import { pick, type RoundRobinState } from "./balancing";
import { ReadyRound } from "./ready-round";
import { migrate } from "./schema";
import { fitKey } from "./queue-rules";
import { LATENCY_WINDOW_MS, RATE_WINDOW_MS, StatsStore } from "./stats";
import { noteTimer, TaskStore, type SubmitOutcome } from "./tasks";
import { nextAlarmAt } from "./timers";
import {
  TASK_STATUSES,
  type AgentInput,
  type AgentLoad,
  type AgentRecord,
  type AgentState,
  type LeasedTask,
  type PoolConfig,
  type PoolMetrics,
  type PoolStats,
  type Principal,
  type Settlement,
  type SettlementResult,
  type TaskInput,
  type StatusCounts,
  type TaskStatus,
} from "./types";

/** How often a pool that could not reach the directory tries again. */
export const LISTING_RETRY_MS = 5_000;
/** Tasks pushed to one agent per pick: small enough to spread a burst, large enough to batch. */
export const DISPATCH_QUANTUM = 8;

/**
 * One pool shard's state and rules, over its SQLite storage: the stores plus the operations that span them.
 * Synchronous throughout; the Durable Object class wraps each call in a transaction and handles the rest.
 */
export class PoolCore {
  readonly lanes: LaneStore;
  readonly stats: StatsStore;
  readonly tasks: TaskStore;
  readonly agents: AgentStore;
  private cachedConfig: PoolConfig | null = null;

  constructor(
    private readonly sql: SqlStorage,
    readonly pool: string,
    readonly shard: number,
    random: () => number = random01,
  ) {
    this.lanes = new LaneStore(sql);
    this.stats = new StatsStore(sql);
    this.tasks = new TaskStore(sql, this.lanes, this.stats, {
      pool,
      shard,
      random01: random,
      retentionMs: () => this.config().retentionMs,
      maxUnfinishedPerTenant: () => this.config().maxUnfinishedPerTenant,
      mayActForAgent: (principal, agentId) => this.agents.mayActFor(principal, agentId),
      agentOutcome: (agentId, ok, latencyMs) => this.agents.outcome(agentId, ok, latencyMs),
    });
    this.agents = new AgentStore(
      sql,
      pool,
      (agentId) => this.tasks.inFlight(agentId),
      () => this.config(),
      (at) => noteTimer(this.tasks.effects, at),
    );
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
   * A config is a first write like any other, but a tenant cannot reconfigure a pool that only other tenants
   * use: it answers 404 as for every other pool-level call of theirs.
   */
  updateConfig(principal: Principal, patch: PoolConfigPatch, now: number): PoolConfig {
    const fresh = this.sql.exec("SELECT 1 FROM tenants LIMIT 1").toArray().length === 0;
    if (!fresh) this.requireTenant(principal);
    this.touch(principal, now);
    const next = mergeConfig(this.config(), patch);
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES ('config', ?1) ON CONFLICT (key) DO UPDATE SET value = ?1",
      JSON.stringify(next),
    );
    this.cachedConfig = next;
    return next;
  }

  /** Forgets caches after a rolled-back transaction. */
  /** Writes what the transaction gathered in memory (counters, agent outcomes). Call at its end, inside it. */
  flush(now: number): void {
    this.agents.flushOutcomes(now);
    this.stats.flush(now);
    this.tasks.flushCounts();
  }

  discardCaches(): void {
    this.cachedConfig = null;
    this.stats.discard();
    this.agents.discardOutcomes();
    this.lanes.reload();
    this.tasks.takeEffects();
    this.tasks.discardCounts();
    // A tenant first seen by the rolled-back transaction is not in the table after all.
    this.knownTenants.clear();
    this.unlisted = true;
  }

  // ---- tenants of the pool, and their listing in the directory ----------------------------------------------

  /** Records that a tenant uses this pool (its first write). Call inside a transaction. */
  touch(principal: Principal, now: number): void {
    if (this.knownTenants.has(principal.tenant)) return;
    const cursor = this.sql.exec("INSERT OR IGNORE INTO tenants (tenant, first_at) VALUES (?, ?)", principal.tenant, now);
    cursor.toArray();
    if (cursor.rowsWritten > 0) this.unlisted = true;
    this.knownTenants.add(principal.tenant);
  }

  /** Tenants known to be in the tenants table (a cache: a first write of each tenant is looked at once). */
  private readonly knownTenants = new Set<string>();
  /** Whether some tenant may wait to be listed in the directory; rechecked from the table when true. */
  unlisted = true;

  /**
   * Pool-level reads (stats, task lists, agents, config) answer 404 to a tenant that never used the pool, as if
   * it did not exist: existence does not leak across tenants.
   */
  requireTenant(principal: Principal): void {
    if (principal.allTenants) return;
    if (this.sql.exec("SELECT 1 FROM tenants WHERE tenant = ?", principal.tenant).toArray().length === 0) throw poolNotFound(this.pool);
  }

  unlistedTenants(): string[] {
    if (!this.unlisted) return [];
    const tenants = this.sql.exec<{ tenant: string }>("SELECT tenant FROM tenants WHERE listed = 0").toArray().map((r) => r.tenant);
    if (tenants.length === 0) this.unlisted = false;
    return tenants;
  }

  markListed(tenant: string): void {
    this.sql.exec("UPDATE tenants SET listed = 1 WHERE tenant = ?", tenant);
  }

  /** Agent operations in a pool that requires mTLS need a verified client certificate. */
  requireCertificate(principal: Principal): void {
    if (this.config().requireClientCert && !principal.certVerified) {
      throw new ApiError("forbidden", `pool ${this.pool} requires agents to present a client certificate that Cloudflare verified`);
    }
  }

  // ---- agents and leases ----------------------------------------------------------------------------------

  registerAgent(principal: Principal, input: AgentInput, now: number): AgentRecord {
    this.requireCertificate(principal);
    this.touch(principal, now);
    this.tasks.effects.agentsChanged = true;
    return this.agents.register(principal, input, now);
  }

  heartbeat(principal: Principal, agentId: string, load: AgentLoad | null, now: number): AgentRecord {
    this.requireCertificate(principal);
    this.tasks.effects.agentsChanged = true;
    return this.agents.heartbeat(principal, agentId, load, now);
  }

  /** A sign of life from an agent's socket; a changed state (recovered) may let it take work again. */
  seen(agentId: string, load: AgentLoad | null, now: number): void {
    if (this.agents.seen(agentId, load, now)) this.tasks.effects.agentsChanged = true;
  }

  submit(principal: Principal, inputs: readonly TaskInput[], now: number): SubmitOutcome[] {
    this.touch(principal, now);
    return this.tasks.submit(principal, inputs, now);
  }

  settle(principal: Principal, items: readonly Settlement[], now: number): SettlementResult[] {
    this.requireCertificate(principal);
    return this.tasks.settle(principal, items, now);
  }

  /** Leases up to `max` tasks to a running agent within its free concurrency. */
  lease(principal: Principal, agentId: string, max: number, now: number): LeasedTask[] {
    this.requireCertificate(principal);
    this.agents.get(principal, agentId);
    // Polling for work is a sign of life too.
    if (this.agents.seen(agentId, null, now)) this.tasks.effects.agentsChanged = true;
    const row = this.agents.row(agentId)!;
    return this.tasks.lease(this.agents.fit(row), Math.min(max, this.agents.room(row)), now);
  }

  /**
   * Pushes work to connected agents, in one transaction: the pool's strategy picks an agent among those with
   * credits and room, it gets up to a small quantum of tasks, and so on until no agent can take more or nothing
   * fits; then every pick is leased in one statement. Answers the leases per agent; each consumed a credit.
   */
  dispatch(connected: ReadonlySet<string>, rr: RoundRobinState, now: number): Map<string, LeasedTask[]> {
    const strategy = this.config().strategy;
    // Read once; what changes during the round (in flight, credits, room) is tracked here, not re-read.
    let candidates = this.agents.candidates(connected).map((c) => {
      const fit = this.agents.fit(c.row);
      return { ...c, fit, key: fitKey(fit) };
    });
    // The picks are planned over the ready tasks each kind of agent reads once, then leased in one statement.
    const fits = new Map(candidates.map((c) => [c.key, c.fit]));
    const budgets = new Map<string, number>();
    for (const c of candidates) budgets.set(c.key, (budgets.get(c.key) ?? 0) + Math.min(c.credits, c.room));
    const ready = new ReadyRound((key, n) => this.tasks.ready(fits.get(key)!, n));
    const plan: { seq: number; agentId: string }[] = [];
    while (candidates.length > 0) {
      const chosen = pick(strategy, candidates, rr)!;
      const want = Math.min(chosen.credits, chosen.room, DISPATCH_QUANTUM);
      const seqs = ready.take(chosen.key, want, budgets.get(chosen.key)!);
      if (seqs.length < want) {
        // The lanes this agent accepts are empty now, and so they are for every agent that accepts the same
        // lanes: they all drop out of this round.
        candidates = candidates.filter((c) => c.key !== chosen.key);
        if (seqs.length === 0) continue;
      }
      chosen.credits -= seqs.length;
      chosen.room -= seqs.length;
      chosen.inFlight += seqs.length;
      for (const seq of seqs) plan.push({ seq, agentId: chosen.agentId });
      if (chosen.credits <= 0 || chosen.room <= 0) candidates = candidates.filter((c) => c !== chosen);
    }
    const out = new Map<string, LeasedTask[]>();
    this.tasks.leaseTo(plan, now).forEach((task, i) => {
      const agentId = plan[i]!.agentId;
      const list = out.get(agentId);
      if (list) list.push(task);
      else out.set(agentId, [task]);
    });
    for (const [agentId, leased] of out) this.agents.useCredits(agentId, leased.length);
    return out;
  }

  /** Works off due timers of agents (health, breakers) and of tasks (leases, delays, retention). */
  runTimers(now: number, limit: number): number {
    const { changed } = this.agents.runTimers(now, (agentId) => this.tasks.releaseAgent(agentId, `agent ${agentId} missed its heartbeats`, now));
    // An agent that failed, recovered or whose breaker half-opened changes who can take work.
    if (changed > 0) this.tasks.effects.agentsChanged = true;
    return this.tasks.runTimers(now, limit);
  }

  /** A lifecycle change; an agent that fails gives its leases back, a terminating one leaves once idle. */
  transitionAgent(principal: Principal, agentId: string, to: AgentState, now: number): AgentRecord {
    const agent = this.agents.transition(principal, agentId, to);
    this.tasks.effects.agentsChanged = true;
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

  // ---- timers ---------------------------------------------------------------------------------------------

  nextTimer(now: number): number | null {
    const unlisted = this.sql.exec("SELECT 1 FROM tenants WHERE listed = 0 LIMIT 1").toArray().length > 0;
    return nextAlarmAt([this.tasks.nextTimer(), this.agents.nextTimer(), unlisted ? now + LISTING_RETRY_MS : null]);
  }

  // ---- observation ----------------------------------------------------------------------------------------

  statusCounts(principal: Principal): StatusCounts {
    this.requireTenant(principal);
    const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as StatusCounts;
    for (const row of this.taskCounts()) {
      if (principal.allTenants || row.tenant === principal.tenant) counts[row.status] += row.count;
    }
    return counts;
  }

  poolStats(principal: Principal, now: number): PoolStats {
    const rates = this.stats.rates(now);
    const latency = this.stats.latency(now);
    return {
      pool: this.pool,
      queue: this.statusCounts(principal),
      agents: this.agents.countsByState(),
      throughput: {
        windowSeconds: RATE_WINDOW_MS / 1000,
        submittedPerSec: rates.submitted,
        leasedPerSec: rates.leased,
        succeededPerSec: rates.succeeded,
        failedPerSec: rates.failed,
      },
      latencyMs: { p50: latency.p50, p99: latency.p99, windowSeconds: LATENCY_WINDOW_MS / 1000, samples: latency.samples },
    };
  }

  metrics(): PoolMetrics {
    return {
      pool: this.pool,
      tasks: this.taskCounts(),
      agents: this.agents.countsByState(),
      breakers: this.agents.breakers(),
      counters: this.stats.counters(),
      duration: this.stats.durationTotals(),
    };
  }

  private taskCounts(): { tenant: string; status: TaskStatus; count: number }[] {
    return this.sql
      .exec<{ tenant: string; status: TaskStatus; n: number }>("SELECT tenant, status, n FROM status_counts WHERE n > 0 ORDER BY tenant, status")
      .toArray()
      .map(({ tenant, status, n }) => ({ tenant, status, count: n }));
  }
}

export function poolNotFound(pool: string): ApiError {
  return new ApiError("not_found", `no pool ${pool}`);
}
