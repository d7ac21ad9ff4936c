import { ApiError } from "../../src/shared/errors";
import { weightOf, ewma, type Candidate } from "./balancing";
import { afterOutcome, breakerAllowance } from "./breaker";
import { agentTimer, dueActions, stateAfterHeartbeat } from "./health";
import { randomToken } from "./ids";
import { canTransition } from "./lifecycle";
import { AGENT_STATES, type AgentInput, type AgentLoad, type AgentRecord, type AgentState, type PoolConfig, type Principal } from "./types";

/** What {@link AgentStore.fit} reads of an agent's row. */
export type FitRow = Pick<AgentRow, "agent_id" | "tenant" | "capabilities" | "cpu" | "memory_mb" | "gpu">;

export interface AgentRow {
  [column: string]: SqlStorageValue;
  agent_id: string;
  tenant: string | null;
  state: AgentState;
  capabilities: string;
  cpu: number;
  memory_mb: number;
  gpu: number;
  max_concurrency: number;
  load: string;
  metadata: string;
  breaker: "closed" | "open" | "half_open";
  last_heartbeat_at: number;
  registered_at: number;
  timer_at: number | null;
  registered_by: string | null;
  credits: number;
  consecutive_failures: number;
  breaker_until: number | null;
  latency_ewma_ms: number | null;
}

const IDLE_LOAD: AgentLoad = { currentLoad: 0, queueDepth: 0, avgLatencyMs: 0 };

/**
 * The agent registry of one pool. Like the task store, every method is a synchronous step inside the
 * coordinator's transaction; in-flight counts come from the tasks table, so they cannot drift.
 */
export class AgentStore {
  constructor(
    private readonly sql: SqlStorage,
    private readonly pool: string,
    private readonly inFlight: (agentId: string) => number,
    private readonly config: () => PoolConfig,
    /** Told of every timer set, so the coordinator can move its alarm without reading the timers back. */
    private readonly onTimer: (at: number | null) => void = () => undefined,
  ) {}

  /**
   * Registers an agent (pending -> initializing -> running in one step). Registering an id that exists
   * replaces its registration and keeps its leases, so a restarted agent process picks up where it was.
   */
  register(principal: Principal, input: AgentInput, now: number): AgentRecord {
    const agentId = input.agentId ?? `agent-${randomToken(9)}`;
    const existing = this.row(agentId);
    if (existing && !this.mayAct(principal, existing)) {
      throw new ApiError("conflict", `agent id ${agentId} is taken in pool ${this.pool}`);
    }
    // The shared fleet (registered by the bootstrap key or an operator) serves every tenant; others serve their own.
    const tenant = principal.fleetOperator ? null : principal.tenant;
    this.sql.exec(
      `INSERT INTO agents (agent_id, tenant, state, capabilities, cpu, memory_mb, gpu, max_concurrency, load, metadata,
         last_heartbeat_at, registered_at, registered_by)
       VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)
       ON CONFLICT (agent_id) DO UPDATE SET tenant = ?2, state = 'running', capabilities = ?3, cpu = ?4, memory_mb = ?5,
         gpu = ?6, max_concurrency = ?7, metadata = ?9, last_heartbeat_at = ?10, registered_at = ?10, registered_by = ?11`,
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
    );
    this.retime(agentId);
    return this.get(principal, agentId);
  }

  get(principal: Principal, agentId: string): AgentRecord {
    const row = this.row(agentId);
    if (!row || !this.mayAct(principal, row)) throw new ApiError("not_found", `no agent ${agentId} in pool ${this.pool}`);
    return this.record(row);
  }

  list(principal: Principal): AgentRecord[] {
    return this.sql
      .exec<AgentRow>("SELECT * FROM agents ORDER BY registered_at, agent_id")
      .toArray()
      .filter((row) => this.mayAct(principal, row))
      .map((row) => this.record(row));
  }

  heartbeat(principal: Principal, agentId: string, load: AgentLoad | null, now: number): AgentRecord {
    this.get(principal, agentId);
    this.seen(agentId, load, now);
    return this.get(principal, agentId);
  }

  /**
   * The agent showed it is alive (a heartbeat, a lease call, any WebSocket message): its failure deadline moves,
   * and a failed agent steps back through recovering to running.
   */
  seen(agentId: string, load: AgentLoad | null, now: number): boolean {
    // The common case in one write: a running agent with a closed breaker only moves its failure deadline.
    const config = this.config();
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
      this.onTimer(deadline);
      return false;
    }
    const row = this.row(agentId);
    if (!row) return false;
    this.sql.exec(
      "UPDATE agents SET last_heartbeat_at = ?1, load = coalesce(?2, load), state = ?3 WHERE agent_id = ?4",
      now,
      load === null ? null : JSON.stringify(load),
      stateAfterHeartbeat(row.state),
      agentId,
    );
    this.retime(agentId);
    return stateAfterHeartbeat(row.state) !== row.state;
  }

  /** Recomputes when the alarm must next look at an agent. */
  private retime(agentId: string): void {
    const row = this.row(agentId);
    if (!row) return;
    const at = agentTimer(
      { state: row.state, lastSeenAt: row.last_heartbeat_at, breaker: row.breaker, breakerUntil: row.breaker_until },
      this.config(),
    );
    this.sql.exec("UPDATE agents SET timer_at = ? WHERE agent_id = ?", at, agentId);
    this.onTimer(at);
  }

  /**
   * Works off due agent timers: silent live agents fail (their leases go back through `release`), agents silent
   * past the failed-agent TTL terminate and leave, open breakers turn half-open. Answers the agents that failed.
   */
  runTimers(now: number, release: (agentId: string) => void): { failed: string[]; changed: number } {
    const failed: string[] = [];
    let changed = 0;
    const config = this.config();
    for (const row of this.sql.exec<AgentRow>("SELECT * FROM agents WHERE timer_at IS NOT NULL AND timer_at <= ? ORDER BY timer_at LIMIT 500", now).toArray()) {
      const facts = { state: row.state, lastSeenAt: row.last_heartbeat_at, breaker: row.breaker, breakerUntil: row.breaker_until };
      for (const action of dueActions(facts, now, config)) {
        changed++;
        if (action === "fail") {
          this.sql.exec("UPDATE agents SET state = 'failed' WHERE agent_id = ?", row.agent_id);
          release(row.agent_id);
          failed.push(row.agent_id);
        } else if (action === "terminate") {
          this.sql.exec("UPDATE agents SET state = 'terminating' WHERE agent_id = ?", row.agent_id);
        } else {
          this.sql.exec("UPDATE agents SET breaker = 'half_open', breaker_until = NULL WHERE agent_id = ?", row.agent_id);
        }
      }
      this.retime(row.agent_id);
      this.reapTerminating([row.agent_id]);
    }
    return { failed, changed };
  }

  /** Outcomes of the open transaction per agent, in order, written once by `flushOutcomes` at its end. */
  private readonly pendingOutcomes = new Map<string, { ok: boolean; latencyMs: number | null }[]>();

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
    const config = this.config().breaker;
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
    const inFlight = this.inFlight(row.agent_id);
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
  }

  /**
   * The push candidates among the connected agents: running, with credits and room, with what the strategies
   * weigh. Two queries whatever the number of agents: the agents holding credits (a partial index), and the tasks
   * in flight of those. Only the columns a round needs are read, the reported load is taken out of its JSON by
   * SQLite, and capabilities are parsed once per distinct value.
   */
  candidates(connected: ReadonlySet<string>): (Candidate & { credits: number; room: number; row: FitRow })[] {
    const rows = this.sql
      .exec<FitRow & { max_concurrency: number; breaker: AgentRow["breaker"]; credits: number; latency_ewma_ms: number | null; current_load: number | null }>(
        `SELECT agent_id, tenant, capabilities, cpu, memory_mb, gpu, max_concurrency, breaker, credits, latency_ewma_ms,
           load ->> '$.currentLoad' AS current_load
         FROM agents WHERE credits > 0 AND state = 'running'`,
      )
      .toArray()
      .filter((r) => connected.has(r.agent_id));
    const inFlight = this.inFlightOf(rows.map((r) => r.agent_id));
    const out: (Candidate & { credits: number; room: number; row: FitRow })[] = [];
    for (const row of rows) {
      const held = inFlight.get(row.agent_id) ?? 0;
      const room = Math.min(row.max_concurrency - held, breakerAllowance(row.breaker, held));
      if (room <= 0) continue;
      out.push({
        agentId: row.agent_id,
        inFlight: held,
        maxConcurrency: row.max_concurrency,
        weight: weightOf({ cpu: row.cpu }),
        currentLoad: row.current_load ?? 0,
        latencyMs: row.latency_ewma_ms,
        credits: row.credits,
        room,
        row,
      });
    }
    return out;
  }

  /** Tasks in flight per agent, for any number of agents in one query. */
  private inFlightOf(agentIds: readonly string[]): Map<string, number> {
    const out = new Map<string, number>();
    if (agentIds.length === 0) return out;
    for (const r of this.sql.exec<{ agent_id: string; n: number }>(
      "SELECT agent_id, count(*) AS n FROM tasks WHERE status = 'leased' AND agent_id IN (SELECT value FROM json_each(?)) GROUP BY agent_id",
      JSON.stringify(agentIds),
    )) {
      out.set(r.agent_id, r.n);
    }
    return out;
  }

  /** A lifecycle change asked for by a client; only the pairs of the lifecycle are allowed. */
  transition(principal: Principal, agentId: string, to: AgentState): AgentRecord {
    const agent = this.get(principal, agentId);
    if (agent.state === to) return agent;
    if (!canTransition(agent.state, to)) {
      throw new ApiError("invalid_transition", `an agent cannot go from ${agent.state} to ${to}`, { from: agent.state, to });
    }
    this.sql.exec("UPDATE agents SET state = ? WHERE agent_id = ?", to, agentId);
    this.retime(agentId);
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
      if (row?.state === "terminating" && this.inFlight(agentId) === 0) {
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

  countsByState(): Record<AgentState, number> {
    const counts = Object.fromEntries(AGENT_STATES.map((s) => [s, 0])) as Record<AgentState, number>;
    for (const { state, n } of this.sql.exec<{ state: AgentState; n: number }>("SELECT state, count(*) AS n FROM agents GROUP BY state")) {
      counts[state] = n;
    }
    return counts;
  }

  breakers(): { agentId: string; breaker: "closed" | "open" | "half_open" }[] {
    return this.sql
      .exec<{ agent_id: string; breaker: "closed" | "open" | "half_open" }>("SELECT agent_id, breaker FROM agents ORDER BY agent_id")
      .toArray()
      .map((r) => ({ agentId: r.agent_id, breaker: r.breaker }));
  }

  nextTimer(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(timer_at) AS at FROM agents WHERE timer_at IS NOT NULL").one().at;
  }

  fit(row: FitRow): { agentId: string; tenant: string | null; capabilities: readonly string[]; resources: { cpu: number; memoryMb: number; gpu: number } } {
    let capabilities = this.parsedCapabilities.get(row.capabilities);
    if (!capabilities) {
      if (this.parsedCapabilities.size >= 1_000) this.parsedCapabilities.clear();
      capabilities = Object.freeze(JSON.parse(row.capabilities) as string[]);
      this.parsedCapabilities.set(row.capabilities, capabilities);
    }
    return {
      agentId: row.agent_id,
      tenant: row.tenant,
      capabilities,
      resources: { cpu: row.cpu, memoryMb: row.memory_mb, gpu: row.gpu },
    };
  }

  /** Capabilities as stored (JSON text) to their parsed form: a fleet has few distinct sets. */
  private readonly parsedCapabilities = new Map<string, readonly string[]>();

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
    return {
      agentId: row.agent_id,
      pool: this.pool,
      tenant: row.tenant,
      state: row.state,
      capabilities: JSON.parse(row.capabilities) as string[],
      resources: { cpu: row.cpu, memoryMb: row.memory_mb, gpu: row.gpu },
      maxConcurrency: row.max_concurrency,
      inFlight: this.inFlight(row.agent_id),
      load: JSON.parse(row.load) as AgentLoad,
      metadata: row.metadata,
      breaker: row.breaker,
      lastHeartbeatAt: row.last_heartbeat_at,
      registeredAt: row.registered_at,
      latencyMs: row.latency_ewma_ms === null ? null : Math.round(row.latency_ewma_ms * 10) / 10,
      credits: row.credits,
    };
  }
}
