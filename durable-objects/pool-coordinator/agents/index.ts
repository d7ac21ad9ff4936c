/**
 * The agent registry of one pool shard. Like the task store, every method is a synchronous step inside the
 * coordinator's transaction; in-flight counts come from the tasks table, so they cannot drift. Changes that may
 * let an agent take work emit `agent_changed`; deadlines go to the alarm through `timer`.
 */
import { ApiError } from "../../../contract/errors.ts";
import type { Emit } from "../../../contract/events.ts";
import { AGENT_STATES, type AgentCounts, type AgentInput, type AgentMember, type AgentLoad, type AgentRecord, type AgentState, type BreakerState, type PoolConfig, type Principal } from "../../../contract/records.ts";
import { randomToken } from "../../../lib/random.ts";
import type { AgentFit } from "../queue-rules.ts";
import { ewma } from "./balancing.ts";
import { afterOutcome, breakerAllowance } from "../../../lib/breaker.ts";
import { FitReader, pushCandidates, type Holdings, type PushCandidate } from "./candidates.ts";
import { agentTimer, dueActions, stateAfterHeartbeat } from "./health.ts";
import { canTransition } from "./lifecycle.ts";
import { IDLE_LOAD, toAgentRecord, type AgentRow, type FitRow } from "./rows.ts";

export type { AgentRow, FitRow } from "./rows.ts";

export interface AgentStoreHost {
  sql: SqlStorage;
  pool: string;
  shard: number;
  inFlight: (agentId: string) => number;
  config: () => PoolConfig;
  /** A deadline a change set: the alarm must be no later. */
  timer: (at: number | null) => void;
  emit: Emit;
}

export class AgentStore {
  private readonly sql: SqlStorage;
  private readonly fits = new FitReader();
  /** Outcomes of the open transaction per agent, in order, written once by `flushOutcomes` at its end. */
  private readonly pendingOutcomes = new Map<string, { ok: boolean; latencyMs: number | null }[]>();

  constructor(private readonly host: AgentStoreHost) {
    this.sql = host.sql;
  }

  /**
   * Registers an agent (pending -> initializing -> running in one step). Registering an id that exists
   * replaces its registration and keeps its leases, so a restarted agent process picks up where it was.
   */
  register(principal: Principal, input: AgentInput, now: number): AgentRecord {
    const agentId = input.agentId ?? `agent-${randomToken(9)}`;
    const existing = this.row(agentId);
    if (existing && !this.mayAct(principal, existing)) throw new ApiError("conflict", `agent id ${agentId} is taken in pool ${this.host.pool}`);
    // The shared fleet (registered by the bootstrap key or an operator) serves every tenant; others serve their own.
    const tenant = principal.fleetOperator ? null : principal.tenant;
    this.sql.exec(
      `INSERT INTO agents (agent_id, tenant, state, capabilities, cpu, memory_mb, gpu, max_concurrency, load, metadata,
         last_heartbeat_at, registered_at, registered_by, home)
       VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12)
       ON CONFLICT (agent_id) DO UPDATE SET tenant = ?2, state = 'running', capabilities = ?3, cpu = ?4, memory_mb = ?5,
         gpu = ?6, max_concurrency = ?7, metadata = ?9, last_heartbeat_at = ?10, registered_at = ?10, registered_by = ?11, home = ?12`,
      agentId,
      tenant,
      JSON.stringify([...new Set(input.capabilities)].sort()),
      input.resources.cpu,
      input.resources.memoryMb,
      input.resources.gpu,
      input.maxConcurrency,
      JSON.stringify(IDLE_LOAD),
      input.metadata,
      now,
      principal.actor,
      input.home === false ? 0 : 1,
    );
    this.retime(agentId);
    this.host.emit({ type: "agent_changed", agentId });
    return this.get(principal, agentId);
  }

  get(principal: Principal, agentId: string): AgentRecord {
    const row = this.row(agentId);
    if (!row || !this.mayAct(principal, row)) throw new ApiError("not_found", `no agent ${agentId} in pool ${this.host.pool}`);
    return this.record(row);
  }

  list(principal: Principal): AgentRecord[] {
    return this.sql
      .exec<AgentRow>("SELECT * FROM agents ORDER BY registered_at, agent_id")
      .toArray()
      .filter((row) => this.mayAct(principal, row))
      .map((row) => this.record(row));
  }

  /** A heartbeat over HTTP: a sign of life with the agent's load; every heartbeat lets a push round run. */
  heartbeat(principal: Principal, agentId: string, load: AgentLoad | null, now: number): AgentRecord {
    this.get(principal, agentId);
    this.seen(agentId, load, now);
    this.host.emit({ type: "agent_changed", agentId });
    return this.get(principal, agentId);
  }

  /**
   * The agent showed it is alive (a heartbeat, a lease call, any WebSocket message): its failure deadline moves,
   * and a failed agent steps back through recovering to running (which may let it take work again).
   */
  seen(agentId: string, load: AgentLoad | null, now: number): void {
    // The common case in one write: a running agent with a closed breaker only moves its failure deadline.
    const config = this.host.config();
    const deadline = now + config.heartbeatIntervalMs * config.missedHeartbeats;
    const fast = this.sql.exec(
      "UPDATE agents SET last_heartbeat_at = ?1, load = coalesce(?2, load), timer_at = ?3 WHERE agent_id = ?4 AND state = 'running' AND breaker = 'closed'",
      now,
      load === null ? null : JSON.stringify(load),
      deadline,
      agentId,
    );
    fast.toArray();
    if (fast.rowsWritten > 0) {
      this.host.timer(deadline);
      return;
    }
    const row = this.row(agentId);
    if (!row) return;
    const next = stateAfterHeartbeat(row.state);
    this.sql.exec("UPDATE agents SET last_heartbeat_at = ?1, load = coalesce(?2, load), state = ?3 WHERE agent_id = ?4", now, load === null ? null : JSON.stringify(load), next, agentId);
    this.retime(agentId);
    if (next !== row.state) this.host.emit({ type: "agent_changed", agentId });
  }

  /** Recomputes when the alarm must next look at an agent. */
  private retime(agentId: string): void {
    const row = this.row(agentId);
    if (!row) return;
    const at = agentTimer({ state: row.state, lastSeenAt: row.last_heartbeat_at, breaker: row.breaker, breakerUntil: row.breaker_until }, this.host.config());
    this.sql.exec("UPDATE agents SET timer_at = ? WHERE agent_id = ?", at, agentId);
    this.host.timer(at);
  }

  nextTimer(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(timer_at) AS at FROM agents WHERE timer_at IS NOT NULL").one().at;
  }

  /**
   * Works off up to `limit` due agent timers: silent live agents fail (their leases go back through `release`),
   * agents silent past the failed-agent TTL terminate and leave, open breakers turn half-open. Each handled agent
   * is re-timed, so running this again finds it no more. Answers how many agents were looked at.
   */
  runTimers(now: number, limit: number, release: (agentId: string) => void): number {
    const config = this.host.config();
    const due = this.sql.exec<AgentRow>("SELECT * FROM agents WHERE timer_at IS NOT NULL AND timer_at <= ? ORDER BY timer_at LIMIT ?", now, limit).toArray();
    for (const row of due) {
      const facts = { state: row.state, lastSeenAt: row.last_heartbeat_at, breaker: row.breaker, breakerUntil: row.breaker_until };
      for (const action of dueActions(facts, now, config)) {
        // An agent that failed, terminated or whose breaker half-opened changes who can take work.
        this.host.emit({ type: "agent_changed", agentId: row.agent_id });
        if (action === "fail") {
          this.sql.exec("UPDATE agents SET state = 'failed' WHERE agent_id = ?", row.agent_id);
          release(row.agent_id);
        } else if (action === "terminate") {
          this.sql.exec("UPDATE agents SET state = 'terminating' WHERE agent_id = ?", row.agent_id);
        } else {
          this.sql.exec("UPDATE agents SET breaker = 'half_open', breaker_until = NULL WHERE agent_id = ?", row.agent_id);
        }
      }
      this.retime(row.agent_id);
      this.reapTerminating([row.agent_id]);
    }
    return due.length;
  }

  /** A lease of this agent ended: success closes its breaker and feeds its latency, failure counts towards opening it. */
  outcome(agentId: string, ok: boolean, latencyMs: number | null): void {
    const list = this.pendingOutcomes.get(agentId);
    if (list) list.push({ ok, latencyMs });
    else this.pendingOutcomes.set(agentId, [{ ok, latencyMs }]);
  }

  /**
   * Folds the transaction's outcomes into each agent's breaker and latency, in order, with one read and one write
   * per agent (a frame of a hundred completions is not a hundred updates of the same row). Call at the end of the
   * transaction, inside it.
   */
  flushOutcomes(now: number): void {
    if (this.pendingOutcomes.size === 0) return;
    const config = this.host.config().breaker;
    for (const [agentId, events] of this.pendingOutcomes) {
      const row = this.row(agentId);
      if (!row) continue;
      let breaker = { state: row.breaker, failures: row.consecutive_failures, until: row.breaker_until };
      let latency = row.latency_ewma_ms;
      for (const { ok, latencyMs } of events) {
        breaker = afterOutcome(breaker, ok, now, config);
        if (ok && latencyMs !== null) latency = ewma(latency, latencyMs);
      }
      this.sql.exec(
        "UPDATE agents SET breaker = ?1, consecutive_failures = ?2, breaker_until = ?3, latency_ewma_ms = ?4 WHERE agent_id = ?5",
        breaker.state,
        breaker.failures,
        breaker.until,
        latency,
        agentId,
      );
      if (breaker.state !== row.breaker) this.retime(agentId);
    }
    this.pendingOutcomes.clear();
  }

  discardOutcomes(): void {
    this.pendingOutcomes.clear();
  }

  /** How many more tasks an agent may take now: running, within concurrency and what its breaker allows. */
  room(row: AgentRow): number {
    if (row.state !== "running") return 0;
    const inFlight = this.host.inFlight(row.agent_id);
    return Math.max(0, Math.min(row.max_concurrency - inFlight, breakerAllowance(row.breaker, inFlight)));
  }

  /** Credits given over the agent's WebSocket: the mesh pushes no more tasks than these. */
  setCredits(agentId: string, credits: number): void {
    this.sql.exec("UPDATE agents SET credits = ? WHERE agent_id = ?", Math.max(0, credits), agentId);
  }

  useCredits(agentId: string, n: number): void {
    this.sql.exec("UPDATE agents SET credits = max(credits - ?, 0) WHERE agent_id = ?", n, agentId);
  }

  addCredits(agentId: string, n: number): void {
    this.sql.exec("UPDATE agents SET credits = min(credits + ?, 100000) WHERE agent_id = ?", n, agentId);
    this.host.emit({ type: "agent_changed", agentId });
  }

  /** The push candidates among the connected agents (see agents/candidates.ts). */
  candidates(connected: ReadonlySet<string>, holdings: Holdings): PushCandidate[] {
    return pushCandidates(this.sql, connected, holdings);
  }

  fit(row: FitRow): AgentFit & { agentId: string } {
    return this.fits.fit(row);
  }

  /** A lifecycle change asked for by a client; only the pairs of the lifecycle are allowed. */
  transition(principal: Principal, agentId: string, to: AgentState): AgentRecord {
    const agent = this.get(principal, agentId);
    if (agent.state === to) return agent;
    if (!canTransition(agent.state, to)) throw new ApiError("invalid_transition", `an agent cannot go from ${agent.state} to ${to}`, { from: agent.state, to });
    this.sql.exec("UPDATE agents SET state = ? WHERE agent_id = ?", to, agentId);
    this.retime(agentId);
    this.host.emit({ type: "agent_changed", agentId });
    return this.get(principal, agentId);
  }

  remove(principal: Principal, agentId: string): void {
    this.get(principal, agentId);
    this.sql.exec("DELETE FROM agents WHERE agent_id = ?", agentId);
  }

  /** Removes terminating agents that have nothing left in flight; answers their ids. */
  reapTerminating(candidates: Iterable<string>): string[] {
    const removed: string[] = [];
    for (const agentId of candidates) {
      const row = this.row(agentId);
      if (row?.state === "terminating" && this.host.inFlight(agentId) === 0) {
        this.sql.exec("DELETE FROM agents WHERE agent_id = ?", agentId);
        removed.push(agentId);
      }
    }
    return removed;
  }

  /** The agent as the lease path needs it, without the tenant check (the caller has done it). */
  row(agentId: string): AgentRow | undefined {
    return this.sql.exec<AgentRow>("SELECT * FROM agents WHERE agent_id = ?", agentId).toArray()[0];
  }

  /** Agents by state, counted where they are at home (an agent is a member of every shard of its pool). */
  countsByState(): AgentCounts {
    const counts = Object.fromEntries(AGENT_STATES.map((s) => [s, 0])) as AgentCounts;
    for (const { state, n } of this.sql.exec<{ state: AgentState; n: number }>("SELECT state, count(*) AS n FROM agents WHERE home = 1 GROUP BY state")) counts[state] = n;
    return counts;
  }

  /** Every agent of the shard as a new shard of the pool takes it over. */
  members(): AgentMember[] {
    return this.sql
      .exec<AgentRow>("SELECT * FROM agents WHERE state NOT IN ('terminating') ORDER BY registered_at, agent_id")
      .toArray()
      .map((r) => ({ agentId: r.agent_id, tenant: r.tenant, registeredBy: r.registered_by, capabilities: JSON.parse(r.capabilities) as string[], resources: { cpu: r.cpu, memoryMb: r.memory_mb, gpu: r.gpu }, maxConcurrency: r.max_concurrency, metadata: r.metadata }));
  }

  /** Takes over the agents of another shard of the pool as members (not at home here); known ones stay as they are. */
  join(members: readonly AgentMember[], now: number): number {
    let joined = 0;
    for (const m of members) {
      const cursor = this.sql.exec(
        `INSERT OR IGNORE INTO agents (agent_id, tenant, state, capabilities, cpu, memory_mb, gpu, max_concurrency, load, metadata,
           last_heartbeat_at, registered_at, registered_by, home)
         VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, 0)`,
        m.agentId,
        m.tenant,
        JSON.stringify([...new Set(m.capabilities)].sort()),
        m.resources.cpu,
        m.resources.memoryMb,
        m.resources.gpu,
        m.maxConcurrency,
        JSON.stringify(IDLE_LOAD),
        m.metadata,
        now,
        m.registeredBy,
      );
      cursor.toArray();
      if (cursor.rowsWritten === 0) continue;
      joined++;
      this.retime(m.agentId);
      this.host.emit({ type: "agent_changed", agentId: m.agentId });
    }
    return joined;
  }

  atHome(): { agentId: string; metadata: string }[] {
    return this.sql.exec<{ agent_id: string; metadata: string }>("SELECT agent_id, metadata FROM agents WHERE home = 1 ORDER BY agent_id").toArray().map((r) => ({ agentId: r.agent_id, metadata: r.metadata }));
  }

  /** Makes this shard the home of these agents, or not (their home shard drained). */
  setHome(agentIds: readonly string[], home: boolean): void {
    this.sql.exec("UPDATE agents SET home = ? WHERE agent_id IN (SELECT value FROM json_each(?))", home ? 1 : 0, JSON.stringify(agentIds));
  }

  breakers(): { agentId: string; breaker: BreakerState }[] {
    return this.sql
      .exec<{ agent_id: string; breaker: BreakerState }>("SELECT agent_id, breaker FROM agents ORDER BY agent_id")
      .toArray()
      .map((r) => ({ agentId: r.agent_id, breaker: r.breaker }));
  }

  /**
   * Who may see and act for an agent: the bootstrap key for all; an agent credential only for the agents it
   * registered; fleet operators for the shared fleet; everyone else for the agents of their own tenant.
   */
  mayAct(principal: Principal, row: AgentRow): boolean {
    if (principal.allTenants) return true;
    if (principal.agentOnly) return row.registered_by === principal.actor;
    if (row.tenant === null) return principal.fleetOperator;
    return row.tenant === principal.tenant;
  }

  /** Whether the principal may act for this agent (false when the agent does not exist). */
  mayActFor(principal: Principal, agentId: string): boolean {
    const row = this.row(agentId);
    return row !== undefined && this.mayAct(principal, row);
  }

  private record(row: AgentRow): AgentRecord {
    return toAgentRecord(row, this.host.pool, this.host.shard, this.host.inFlight(row.agent_id));
  }
}
