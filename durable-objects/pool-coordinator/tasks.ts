import { ApiError } from "../../src/shared/errors";
import { newTaskId, randomToken } from "./ids";
import type { LaneStore } from "./lanes";
import { afterFailedAttempt, canCancel, isFinal, mergeReady, type AgentFit, type FailureCause, type ReadyRef } from "./queue-rules";
import type { StatsStore } from "./stats";
import { toRecord, type TaskRow } from "./task-rows";
import { ALARM_BATCH } from "./timers";
import { TASK_STATUSES, type LeasedTask, type Principal, type Settlement, type SettlementResult, type TaskError, type TaskInput, type TaskRecord, type TaskStatus } from "./types";

/** Most leases one statement writes (its JSON parameter stays far below the 2 MB a bound string may have). */
export const LEASE_CHUNK = 1024;

/** What a committed operation changed that waiting callers care about. */
export interface Effects {
  /** Some task became queued or an agent got room for more: lease waiters should try again. */
  ready: boolean;
  /** Tasks that reached a final status: result waiters for them wake up. */
  finished: Set<string>;
  /** Agents that gave up a lease: a terminating one may now be removable, a running one has room. */
  released: Set<string>;
  /** An agent registered or changed state: it may now take work. */
  agentsChanged: boolean;
  /** The earliest timer this change set (the alarm must not be later), or null when it set none. */
  earliestTimer: number | null;
}

export function emptyEffects(): Effects {
  return { ready: false, finished: new Set(), released: new Set(), agentsChanged: false, earliestTimer: null };
}

/** Notes a timer a change set, so the coordinator can move its alarm without reading every timer back. */
export function noteTimer(effects: Effects, at: number | null | undefined): void {
  if (at === null || at === undefined) return;
  if (effects.earliestTimer === null || at < effects.earliestTimer) effects.earliestTimer = at;
}

export interface TaskStoreOptions {
  pool: string;
  shard: number;
  random01: () => number;
  retentionMs: () => number;
  /** Most unfinished tasks one tenant may have in the pool. */
  maxUnfinishedPerTenant: () => number;
  /** Whether the principal may act for an agent (it then may settle that agent's leases, whatever the tenant). */
  mayActForAgent: (principal: Principal, agentId: string) => boolean;
  /** A lease of an agent ended well (with its lease-to-completion time) or badly: its breaker and latency. */
  agentOutcome: (agentId: string, ok: boolean, latencyMs: number | null) => void;
}

/** How long a tenant over its quota is told to wait before submitting again. */
const QUOTA_RETRY_SECONDS = 5;
const UNFINISHED: readonly TaskStatus[] = ["waiting", "queued", "leased"];

export interface SubmitOutcome {
  task: TaskRecord;
  created: boolean;
}

export interface ListPage {
  tasks: TaskRecord[];
  cursor: string | null;
}

/** Dependents found while finishing one task, worked off without recursion. */
interface Finish {
  row: TaskRow;
  status: "succeeded" | "dead" | "cancelled";
  result?: string | null;
  error?: TaskError | null;
}

/**
 * The queue of one pool shard over its SQLite storage. Every public method is one step of a transaction that
 * the coordinator opens; none of them awaits. Time and randomness come in from outside, so tests drive them.
 */
export class TaskStore {
  effects: Effects = emptyEffects();

  constructor(
    private readonly sql: SqlStorage,
    private readonly lanes: LaneStore,
    private readonly stats: StatsStore,
    private readonly opts: TaskStoreOptions,
  ) {}

  takeEffects(): Effects {
    const effects = this.effects;
    this.effects = emptyEffects();
    return effects;
  }

  // ---- counts by tenant and status ----------------------------------------------------------------------

  /**
   * Changes to `status_counts` made by this transaction, by tenant and status. Every status change of a task
   * notes itself here ({@link moved}), and {@link flushCounts} writes the net change at the end of the
   * transaction: one statement per tenant and status touched instead of a trigger running per row.
   */
  private countDeltas = new Map<string, Map<TaskStatus, number>>();

  private moved(tenant: string, from: TaskStatus | null, to: TaskStatus | null, n = 1): void {
    if (from === to || n === 0) return;
    let byStatus = this.countDeltas.get(tenant);
    if (!byStatus) this.countDeltas.set(tenant, (byStatus = new Map()));
    if (from !== null) byStatus.set(from, (byStatus.get(from) ?? 0) - n);
    if (to !== null) byStatus.set(to, (byStatus.get(to) ?? 0) + n);
  }

  /** Writes the net status changes of this transaction. Call at its end, inside it. */
  flushCounts(): void {
    for (const [tenant, byStatus] of this.countDeltas) {
      for (const [status, n] of byStatus) {
        if (n > 0) {
          this.sql.exec(
            "INSERT INTO status_counts (tenant, status, n) VALUES (?1, ?2, ?3) ON CONFLICT (tenant, status) DO UPDATE SET n = n + ?3",
            tenant,
            status,
            n,
          );
        } else if (n < 0) {
          // A decrease needs the row (an upsert would check its CHECK on the would-be row first); n >= 0 holds.
          const cursor = this.sql.exec("UPDATE status_counts SET n = n + ?3 WHERE tenant = ?1 AND status = ?2", tenant, status, n);
          if (cursor.rowsWritten !== 1) throw new Error(`status count of ${tenant}/${status} would go below zero`);
        }
      }
    }
    this.countDeltas.clear();
  }

  /** Forgets the changes of a transaction that rolled back. */
  discardCounts(): void {
    this.countDeltas.clear();
  }

  // ---- submit -------------------------------------------------------------------------------------------

  /**
   * Inserts tasks in input order. A task whose idempotency key this tenant already used in this pool is not
   * inserted again: the existing task is answered with `created: false`.
   */
  submit(principal: Principal, inputs: readonly TaskInput[], now: number): SubmitOutcome[] {
    const out: SubmitOutcome[] = [];
    let submitted = 0;
    const quota = this.opts.maxUnfinishedPerTenant();
    let unfinished = this.unfinishedOf(principal.tenant);
    const problems: { index: number; field: string; message: string }[] = [];
    // Plain tasks (no idempotency key, no dependencies) are inserted many per statement; the buffer is written
    // before any other task, so seq (the FIFO order) still follows the input order.
    let plain: TaskInput[] = [];
    const flushPlain = () => {
      if (plain.length === 0) return;
      if (problems.length === 0) {
        for (const task of this.insertPlain(principal.tenant, plain, now)) out.push({ task, created: true });
        submitted += plain.length;
        unfinished += plain.length;
        if (unfinished > quota) throw this.quotaExceeded(principal.tenant, quota);
      }
      plain = [];
    };
    for (const [index, input] of inputs.entries()) {
      if (input.idempotencyKey === null && input.dependsOn.length === 0) {
        plain.push(input);
        continue;
      }
      flushPlain();
      if (input.idempotencyKey !== null) {
        const existing = this.sql
          .exec<TaskRow>("SELECT * FROM tasks WHERE tenant = ? AND idempotency_key = ?", principal.tenant, input.idempotencyKey)
          .toArray()[0];
        if (existing) {
          out.push({ task: this.record(existing), created: false });
          continue;
        }
      }
      const deps: TaskRow[] = [];
      const dependsOn = [...new Set(input.dependsOn)];
      for (const [j, depId] of dependsOn.entries()) {
        const dep = this.sql.exec<TaskRow>("SELECT * FROM tasks WHERE id = ?", depId).toArray()[0];
        if (!dep || dep.tenant !== principal.tenant) {
          problems.push({ index, field: `dependsOn.${j}`, message: `no task ${depId} in pool ${this.opts.pool}` });
        } else {
          deps.push(dep);
        }
      }
      if (problems.length > 0) continue;
      const task = this.insert(principal.tenant, { ...input, dependsOn }, deps, now);
      out.push({ task, created: true });
      submitted++;
      if (!isFinal(task.status) && ++unfinished > quota) throw this.quotaExceeded(principal.tenant, quota);
    }
    flushPlain();
    if (problems.length > 0) {
      throw new ApiError("invalid_request", "dependsOn must name existing tasks of the same pool and tenant", problems);
    }
    this.stats.count("submitted", submitted);
    return out;
  }

  private quotaExceeded(tenant: string, quota: number): ApiError {
    return new ApiError("rate_limited", `tenant ${tenant} may have at most ${quota} unfinished tasks in pool ${this.opts.pool}`, {
      scope: "quota",
      quota,
      retryAfterSeconds: QUOTA_RETRY_SECONDS,
    });
  }

  /**
   * Inserts tasks without idempotency keys or dependencies in one statement, in input order (seq follows the
   * order of the JSON array). They are queued, or waiting for their delay. The records are built from what was
   * written, so nothing is read back.
   */
  private insertPlain(tenant: string, inputs: readonly TaskInput[], now: number): TaskRecord[] {
    const rows: TaskRow[] = inputs.map((input) => {
      const runAfter = input.delayMs > 0 ? now + input.delayMs : null;
      return {
        seq: 0,
        id: newTaskId(this.opts.pool, this.opts.shard),
        lane: this.lanes.resolve(tenant, input.requires).id,
        tenant,
        type: input.type,
        status: runAfter === null ? "queued" : "waiting",
        priority: input.priority,
        payload: input.payload,
        attempts: 0,
        max_attempts: input.maxAttempts,
        timeout_ms: input.timeoutMs,
        idempotency_key: null,
        depends_on: "[]",
        pending_deps: 0,
        result: null,
        error: null,
        agent_id: null,
        lease_token: null,
        lease_expires_at: null,
        run_after: runAfter,
        timer_at: runAfter,
        created_at: now,
        updated_at: now,
        finished_at: null,
        leased_at: null,
      };
    });
    this.sql.exec(
      `INSERT INTO tasks (id, lane, tenant, type, status, priority, payload, max_attempts, timeout_ms, idempotency_key,
         depends_on, pending_deps, error, run_after, timer_at, created_at, updated_at, finished_at)
       SELECT value ->> '$[0]', value ->> '$[1]', ?2, value ->> '$[2]', value ->> '$[3]', value ->> '$[4]', value ->> '$[5]',
         value ->> '$[6]', value ->> '$[7]', NULL, '[]', 0, NULL, value ->> '$[8]', value ->> '$[8]', ?3, ?3, NULL
       FROM json_each(?1) ORDER BY key`,
      JSON.stringify(rows.map((r) => [r.id, r.lane, r.type, r.status, r.priority, r.payload, r.max_attempts, r.timeout_ms, r.run_after])),
      tenant,
      now,
    );
    for (const r of rows) {
      if (r.status === "queued") this.effects.ready = true;
      noteTimer(this.effects, r.timer_at);
      this.moved(tenant, null, r.status);
    }
    return rows.map((r) => this.record(r));
  }

  private insert(tenant: string, input: TaskInput, deps: readonly TaskRow[], now: number): TaskRecord {
    const lane = this.lanes.resolve(tenant, input.requires);
    const broken = deps.find((d) => d.status === "dead" || d.status === "cancelled");
    const pending = deps.filter((d) => !isFinal(d.status));
    const runAfter = input.delayMs > 0 ? now + input.delayMs : null;
    let status: TaskStatus = "queued";
    let timerAt: number | null = null;
    let finishedAt: number | null = null;
    let error: TaskError | null = null;
    if (broken) {
      status = "dead";
      finishedAt = now;
      timerAt = now + this.opts.retentionMs();
      error = dependencyError(broken);
    } else if (pending.length > 0 || runAfter !== null) {
      status = "waiting";
      timerAt = runAfter;
    }
    const row = this.sql
      .exec<TaskRow>(
        `INSERT INTO tasks (id, lane, tenant, type, status, priority, payload, max_attempts, timeout_ms, idempotency_key,
           depends_on, pending_deps, error, run_after, timer_at, created_at, updated_at, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        newTaskId(this.opts.pool, this.opts.shard),
        lane.id,
        tenant,
        input.type,
        status,
        input.priority,
        input.payload,
        input.maxAttempts,
        input.timeoutMs,
        input.idempotencyKey,
        JSON.stringify(input.dependsOn),
        broken ? 0 : pending.length,
        error === null ? null : JSON.stringify(error),
        runAfter,
        timerAt,
        now,
        now,
        finishedAt,
      )
      .one();
    this.moved(tenant, null, status);
    if (!broken) {
      for (const dep of pending) this.sql.exec("INSERT OR IGNORE INTO task_deps (dep_seq, task_seq) VALUES (?, ?)", dep.seq, row.seq);
    } else {
      this.stats.count("dead", 1);
      this.effects.finished.add(row.id);
    }
    if (status === "queued") this.effects.ready = true;
    noteTimer(this.effects, timerAt);
    return this.record(row);
  }

  /** Waiting, queued and leased tasks of a tenant, from the counts the triggers keep. */
  unfinishedOf(tenant: string): number {
    const stored =
      this.sql
      .exec<{ n: number | null }>(
        `SELECT sum(n) AS n FROM status_counts WHERE tenant = ? AND status IN (${UNFINISHED.map(() => "?").join(", ")})`,
        tenant,
        ...UNFINISHED,
      )
      .one().n ?? 0;
    // With what this transaction changed and has not written yet.
    const pending = this.countDeltas.get(tenant);
    return stored + (pending ? UNFINISHED.reduce((sum, status) => sum + (pending.get(status) ?? 0), 0) : 0);
  }

  /** The tenants of these tasks, by id (the coordinator seals a result with the key of its task's tenant). */
  tenantsOf(ids: readonly string[]): Map<string, string> {
    const out = new Map<string, string>();
    // One statement for any number of ids (bound parameters are limited to 100 per statement).
    for (const row of this.sql.exec<{ id: string; tenant: string }>("SELECT id, tenant FROM tasks WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(ids))) {
      out.set(row.id, row.tenant);
    }
    return out;
  }

  // ---- read ---------------------------------------------------------------------------------------------

  get(principal: Principal, id: string): TaskRecord {
    return this.record(this.visible(principal, id));
  }

  list(principal: Principal, status: TaskStatus | null, limit: number, cursor: string | null): ListPage {
    const after = cursor === null ? 0 : decodeCursor(cursor);
    const args: SqlStorageValue[] = principal.allTenants ? [after] : [after, principal.tenant];
    const rows = this.sql.exec<TaskRow>(listQuery(status, !principal.allTenants), ...args, limit + 1).toArray();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { tasks: page.map((r) => this.record(r)), cursor: rows.length > limit && last ? encodeCursor(last.seq) : null };
  }

  /** Which of these ids name no task of the tenant in this pool (a batch checks before it commits). */
  missing(principal: Principal, ids: readonly string[]): string[] {
    return ids.filter((id) => {
      const row = this.sql.exec<{ tenant: string }>("SELECT tenant FROM tasks WHERE id = ?", id).toArray()[0];
      return !row || row.tenant !== principal.tenant;
    });
  }

  /**
   * Refuses, as a submit of these tasks would, when they cannot fit in the tenant's quota: for a batch over
   * several pools, checked in every pool before any of them commits. Tasks whose idempotency key already names
   * a task add nothing.
   */
  checkQuota(principal: Principal, idempotencyKeys: readonly (string | null)[]): void {
    const keys = idempotencyKeys.filter((k): k is string => k !== null);
    const repeats =
      keys.length === 0
        ? 0
        : this.sql
            .exec<{ n: number }>(
              "SELECT count(*) AS n FROM tasks WHERE tenant = ? AND idempotency_key IN (SELECT DISTINCT value FROM json_each(?))",
              principal.tenant,
              JSON.stringify(keys),
            )
            .one().n;
    const added = idempotencyKeys.length - repeats - (keys.length - new Set(keys).size);
    const quota = this.opts.maxUnfinishedPerTenant();
    if (this.unfinishedOf(principal.tenant) + added > quota) throw this.quotaExceeded(principal.tenant, quota);
  }

  /** Tasks currently leased to an agent. */
  inFlight(agentId: string): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE agent_id = ? AND status = 'leased'", agentId).one().n;
  }

  // ---- lease --------------------------------------------------------------------------------------------

  /** Leases up to `n` ready tasks the agent fits, highest priority first, then oldest. */
  lease(agent: AgentFit & { agentId: string }, n: number, now: number): LeasedTask[] {
    return this.leaseTo(
      this.ready(agent, n).map(({ seq }) => ({ seq, agentId: agent.agentId })),
      now,
    );
  }

  /** The first `n` ready tasks an agent of this fit may take, in serving order. Reads only. */
  ready(agent: AgentFit, n: number): ReadyRef[] {
    if (n <= 0) return [];
    const heads = this.lanes.fitting(agent).map((lane) =>
      this.sql
        .exec<{ seq: number; priority: number }>("SELECT seq, priority FROM tasks WHERE lane = ? AND status = 'queued' ORDER BY priority DESC, seq LIMIT ?", lane.id, n)
        .toArray(),
    );
    return mergeReady(heads, n);
  }

  /**
   * Leases these queued tasks, each to its agent, in one statement; each lease gets its own fresh token. Answers
   * them in the order given. A task that is not queued any more breaks the caller's plan: it throws, and the
   * transaction rolls back.
   */
  leaseTo(assignments: readonly { seq: number; agentId: string }[], now: number): LeasedTask[] {
    if (assignments.length === 0) return [];
    const rows: TaskRow[] = [];
    // In chunks: a round can lease a thousand tasks to each of a thousand agents, and one bound string is limited
    // (2 MB on Cloudflare).
    for (let from = 0; from < assignments.length; from += LEASE_CHUNK) {
      const chunk = assignments.slice(from, from + LEASE_CHUNK);
      const cursor = this.sql.exec<TaskRow>(
        `UPDATE tasks SET status = 'leased', attempts = attempts + 1, agent_id = v.agent, lease_token = v.token,
           lease_expires_at = ?1 + timeout_ms, timer_at = ?1 + timeout_ms, updated_at = ?1, leased_at = ?1
         FROM (SELECT value ->> '$.seq' AS seq, value ->> '$.token' AS token, value ->> '$.agent' AS agent FROM json_each(?2)) AS v
         WHERE tasks.seq = v.seq AND +tasks.status = 'queued' RETURNING *`,
        now,
        JSON.stringify(chunk.map(({ seq, agentId }) => ({ seq, token: randomToken(16), agent: agentId }))),
      );
      for (const row of cursor) rows.push(row);
    }
    if (rows.length !== assignments.length) throw new Error(`lease of ${assignments.length - rows.length} task(s) that are not queued`);
    const bySeq = new Map(rows.map((r) => [r.seq, r]));
    const leased: LeasedTask[] = [];
    for (const { seq } of assignments) {
      const row = bySeq.get(seq)!;
      leased.push({ ...this.record(row), attempt: row.attempts, leaseToken: row.lease_token!, leaseExpiresAt: row.lease_expires_at! });
      noteTimer(this.effects, row.lease_expires_at);
      this.moved(row.tenant, "queued", "leased");
    }
    this.stats.count("leased", leased.length);
    return leased;
  }

  // ---- settle -------------------------------------------------------------------------------------------

  complete(principal: Principal, id: string, leaseToken: string, result: string, now: number): TaskRecord {
    const row = this.holding(principal, id, leaseToken, now);
    this.stats.recordDurations([now - row.created_at]);
    if (row.agent_id !== null) this.opts.agentOutcome(row.agent_id, true, row.leased_at === null ? null : now - row.leased_at);
    return this.finish({ row, status: "succeeded", result }, now);
  }

  fail(principal: Principal, id: string, leaseToken: string, error: TaskError, retryable: boolean, now: number): TaskRecord {
    const row = this.holding(principal, id, leaseToken, now);
    return this.failAttempt(row, "failed", error, retryable, now);
  }

  extend(principal: Principal, id: string, leaseToken: string, extendMs: number | null, now: number): number {
    return this.extendLease(principal, id, leaseToken, extendMs, now).expiresAt;
  }

  private extendLease(principal: Principal, id: string, leaseToken: string, extendMs: number | null, now: number): { expiresAt: number; tenant: string } {
    const row = this.holding(principal, id, leaseToken, now);
    const expiresAt = now + (extendMs ?? row.timeout_ms);
    this.sql.exec("UPDATE tasks SET lease_expires_at = ?1, timer_at = ?1, updated_at = ?2 WHERE seq = ?3", expiresAt, now, row.seq);
    noteTimer(this.effects, expiresAt);
    return { expiresAt, tenant: row.tenant };
  }

  /**
   * Applies an agent's settlements in order, all in the caller's transaction. A refused one (unknown task, stale
   * or expired lease) is refused before it writes anything, so it is reported and the others still apply.
   */
  settle(principal: Principal, items: readonly Settlement[], now: number): SettlementResult[] {
    // The completions of a batch whose tasks are all distinct settle in one statement; whatever that does not
    // settle (an expired or stale lease, a task of another tenant held by a shared agent, ...) goes through the
    // exact path below, which also gives the precise error. With distinct tasks the order does not matter.
    const settled = new Map<string, string>();
    const completes = items.filter((i): i is Extract<Settlement, { action: "complete" }> => i.action === "complete");
    if (completes.length > 1 && new Set(items.map((i) => i.id)).size === items.length) {
      for (const [id, tenant] of this.completeMany(principal, completes, now)) settled.set(id, tenant);
    }
    return items.map((item): SettlementResult => {
      const tenant = settled.get(item.id);
      if (tenant !== undefined) return { id: item.id, status: "succeeded", tenant };
      try {
        switch (item.action) {
          case "complete": {
            const task = this.complete(principal, item.id, item.leaseToken, item.result, now);
            return { id: item.id, status: task.status, tenant: task.tenant };
          }
          case "fail": {
            const task = this.fail(principal, item.id, item.leaseToken, JSON.parse(item.error) as TaskError, item.retryable, now);
            return { id: item.id, status: task.status, tenant: task.tenant };
          }
          case "extend": {
            const { expiresAt, tenant } = this.extendLease(principal, item.id, item.leaseToken, item.extendMs, now);
            return { id: item.id, status: "leased", leaseExpiresAt: expiresAt, tenant };
          }
        }
      } catch (err) {
        if (err instanceof ApiError && (err.code === "not_found" || err.code === "lease_lost")) {
          return { id: item.id, error: { code: err.code, message: err.message } };
        }
        throw err;
      }
    });
  }

  /**
   * Completes many leased tasks in one UPDATE, for the cases the rule is plain: the current, unexpired lease of a
   * task the principal sees by tenant (and, for an agent credential, held by one of its agents). Answers the ids
   * it completed, with their tenants; the caller settles the others one by one.
   */
  private completeMany(principal: Principal, items: readonly Extract<Settlement, { action: "complete" }>[], now: number): [string, string][] {
    const retention = this.opts.retentionMs();
    const done = this.sql
      .exec<{ seq: number; id: string; tenant: string; agent_id: string | null; created_at: number; leased_at: number | null }>(
        `UPDATE tasks SET status = 'succeeded', result = v.result, error = NULL, lease_token = NULL, lease_expires_at = NULL,
           pending_deps = 0, finished_at = ?1, timer_at = ?2, updated_at = ?1
         FROM (SELECT value ->> '$.id' AS id, value ->> '$.token' AS token, value ->> '$.result' AS result FROM json_each(?3)) AS v
         WHERE tasks.id = v.id AND +tasks.status = 'leased' AND tasks.lease_token = v.token AND tasks.lease_expires_at > ?1
           AND (?4 = 1 OR tasks.tenant = ?5)
           AND (?6 = 0 OR tasks.agent_id IN (SELECT agent_id FROM agents WHERE registered_by = ?7))
         RETURNING tasks.seq, tasks.id, tasks.tenant, tasks.agent_id, tasks.created_at, tasks.leased_at`,
        now,
        now + retention,
        JSON.stringify(items.map((i) => ({ id: i.id, token: i.leaseToken, result: i.result }))),
        principal.allTenants ? 1 : 0,
        principal.tenant,
        principal.agentOnly ? 1 : 0,
        principal.actor,
      )
      .toArray();
    if (done.length === 0) return [];
    this.stats.count("succeeded", done.length);
    this.stats.recordDurations(done.map((r) => now - r.created_at));
    noteTimer(this.effects, now + retention);
    for (const r of done) {
      this.moved(r.tenant, "leased", "succeeded");
      this.effects.finished.add(r.id);
      if (r.agent_id !== null) {
        this.effects.released.add(r.agent_id);
        this.opts.agentOutcome(r.agent_id, true, r.leased_at === null ? null : now - r.leased_at);
      }
    }
    // Tasks waiting on these move on (rare: most tasks have no dependents).
    const dependents = this.sql
      .exec<{ dep_seq: number; task_seq: number }>(
        "DELETE FROM task_deps WHERE dep_seq IN (SELECT value FROM json_each(?)) RETURNING dep_seq, task_seq",
        JSON.stringify(done.map((r) => r.seq)),
      )
      .toArray()
      .sort((a, b) => a.task_seq - b.task_seq || a.dep_seq - b.dep_seq);
    for (const { task_seq } of dependents) this.dependencySucceeded(task_seq, now);
    return done.map((r) => [r.id, r.tenant]);
  }

  /** One of a waiting task's dependencies succeeded: one fewer to wait for, and queued once none is left. */
  private dependencySucceeded(seq: number, now: number): void {
    const dependent = this.sql.exec<TaskRow>("SELECT * FROM tasks WHERE seq = ?", seq).one();
    const pending = dependent.pending_deps - 1;
    const ready = pending === 0 && (dependent.run_after === null || dependent.run_after <= now);
    this.sql.exec(
      "UPDATE tasks SET pending_deps = ?1, status = ?2, timer_at = ?3, updated_at = ?4 WHERE seq = ?5",
      pending,
      ready ? "queued" : "waiting",
      ready || dependent.run_after === null ? null : dependent.run_after,
      now,
      dependent.seq,
    );
    this.moved(dependent.tenant, dependent.status, ready ? "queued" : "waiting");
    if (ready) this.effects.ready = true;
    else noteTimer(this.effects, dependent.run_after);
  }

  cancel(principal: Principal, id: string, now: number): TaskRecord {
    const row = this.visible(principal, id);
    if (!canCancel(row.status)) throw new ApiError("conflict", `task ${id} is already ${row.status}`);
    return this.finish({ row, status: "cancelled" }, now);
  }

  /**
   * Gives back every lease an agent holds (it was deleted or lost): each counts as a failed attempt, and the
   * task goes back to the queue at once or, with its attempts used up, to the dead letter queue.
   */
  releaseAgent(agentId: string, reason: string, now: number): number {
    const rows = this.sql.exec<TaskRow>("SELECT * FROM tasks WHERE agent_id = ? AND status = 'leased'", agentId).toArray();
    for (const row of rows) this.failAttempt(row, "agent_lost", { message: reason, code: "agent_lost" }, true, now);
    return rows.length;
  }

  /** Dead tasks back to the queue with attempts reset; `ids` null means every dead task the caller may see. */
  redrive(
    principal: Principal,
    ids: readonly string[] | null,
    now: number,
    limit: number,
    afterSeq = 0,
  ): { redriven: number; skipped: string[]; more: boolean; lastSeq: number } {
    let rows: TaskRow[];
    if (ids === null) {
      rows = this.sql
        .exec<TaskRow>(
          principal.allTenants
            ? "SELECT * FROM tasks WHERE status = 'dead' AND seq > ? ORDER BY seq LIMIT ?"
            : "SELECT * FROM tasks WHERE status = 'dead' AND seq > ? AND tenant = ? ORDER BY seq LIMIT ?",
          ...(principal.allTenants ? [afterSeq, limit + 1] : [afterSeq, principal.tenant, limit + 1]),
        )
        .toArray();
    } else {
      rows = [];
      for (const id of ids) {
        const row = this.sql.exec<TaskRow>("SELECT * FROM tasks WHERE id = ?", id).toArray()[0];
        if (row && (principal.allTenants || row.tenant === principal.tenant) && row.status === "dead") rows.push(row);
      }
      rows.sort((a, b) => a.seq - b.seq);
    }
    const more = ids === null && rows.length > limit;
    let redriven = 0;
    const skipped: string[] = ids === null ? [] : ids.filter((id) => !rows.some((r) => r.id === id));
    for (const row of rows.slice(0, limit)) {
      if (this.requeue(row, now)) redriven++;
      else skipped.push(row.id);
    }
    this.stats.count("redriven", redriven);
    return { redriven, skipped, more, lastSeq: rows.slice(0, limit).reduce((m, r) => Math.max(m, r.seq), afterSeq) };
  }

  /** A dead task made new: its unfinished dependencies are waited for again; a dead or cancelled one forbids it. */
  private requeue(row: TaskRow, now: number): boolean {
    const deps: TaskRow[] = [];
    for (const depId of new Set(JSON.parse(row.depends_on) as string[])) {
      const dep = this.sql.exec<TaskRow>("SELECT * FROM tasks WHERE id = ?", depId).toArray()[0];
      // A purged dependency finished long ago; it can no longer hold the task back.
      if (!dep) continue;
      if (dep.status === "dead" || dep.status === "cancelled") return false;
      if (!isFinal(dep.status)) deps.push(dep);
    }
    const status: TaskStatus = deps.length > 0 ? "waiting" : "queued";
    this.sql.exec(
      `UPDATE tasks SET status = ?1, attempts = 0, pending_deps = ?2, error = NULL, result = NULL, agent_id = NULL,
         run_after = NULL, timer_at = NULL, finished_at = NULL, updated_at = ?3 WHERE seq = ?4`,
      status,
      deps.length,
      now,
      row.seq,
    );
    for (const dep of deps) this.sql.exec("INSERT OR IGNORE INTO task_deps (dep_seq, task_seq) VALUES (?, ?)", dep.seq, row.seq);
    this.moved(row.tenant, row.status, status);
    if (status === "queued") this.effects.ready = true;
    return true;
  }

  // ---- timers -------------------------------------------------------------------------------------------

  nextTimer(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(timer_at) AS at FROM tasks WHERE timer_at IS NOT NULL").one().at;
  }

  /**
   * Works off up to `limit` due timers: expired leases fail their attempt, delays and backoffs end, finished
   * tasks past retention are purged. Answers how many were handled; as many as `limit` means there may be more.
   */
  runTimers(now: number, limit = ALARM_BATCH): number {
    const due = this.sql
      .exec<TaskRow>("SELECT * FROM tasks WHERE timer_at IS NOT NULL AND timer_at <= ? ORDER BY timer_at LIMIT ?", now, limit)
      .toArray();
    let purged = 0;
    for (const row of due) {
      if (row.status === "leased") {
        this.stats.count("expired", 1);
        this.failAttempt(row, "expired", { message: `lease expired after ${row.timeout_ms} ms`, code: "lease_expired" }, true, now);
      } else if (row.status === "waiting") {
        const ready = row.pending_deps === 0;
        this.sql.exec(
          "UPDATE tasks SET status = ?1, timer_at = NULL, updated_at = ?2 WHERE seq = ?3",
          ready ? "queued" : "waiting",
          now,
          row.seq,
        );
        this.moved(row.tenant, row.status, ready ? "queued" : "waiting");
        if (ready) this.effects.ready = true;
      } else if (isFinal(row.status)) {
        this.sql.exec("DELETE FROM task_deps WHERE task_seq = ?", row.seq);
        this.sql.exec("DELETE FROM tasks WHERE seq = ?", row.seq);
        this.moved(row.tenant, row.status, null);
        purged++;
      }
    }
    this.stats.count("purged", purged);
    return due.length;
  }

  // ---- internals ----------------------------------------------------------------------------------------

  private record(row: TaskRow): TaskRecord {
    return toRecord(row, this.opts.pool, this.lanes.get(row.lane));
  }

  /** The task, if the caller may see it; a task of another tenant is as good as missing. */
  private visible(principal: Principal, id: string): TaskRow {
    const row = this.sql.exec<TaskRow>("SELECT * FROM tasks WHERE id = ?", id).toArray()[0];
    if (!row || (!principal.allTenants && row.tenant !== principal.tenant)) throw new ApiError("not_found", `no task ${id}`);
    return row;
  }

  /**
   * The task, if `leaseToken` is its current, unexpired lease: the fencing check of complete, fail and extend.
   * A lease past its expiry is lost even if the alarm has not yet run to requeue the task.
   */
  private holding(principal: Principal, id: string, leaseToken: string, now: number): TaskRow {
    const row = this.sql.exec<TaskRow>("SELECT * FROM tasks WHERE id = ?", id).toArray()[0];
    if (!row) throw new ApiError("not_found", `no task ${id}`);
    // Whoever may act for the agent holding the lease may settle it (a shared agent serves every tenant);
    // anyone else must at least see the task, and an agent credential only ever settles its own agents' leases.
    const sees = principal.allTenants || row.tenant === principal.tenant;
    // Asked only when it matters (another tenant's task, or an agent credential): it reads the agent's row.
    const holder = (!sees || principal.agentOnly) && row.status === "leased" && row.agent_id !== null && this.opts.mayActForAgent(principal, row.agent_id);
    if (!holder && !sees) throw new ApiError("not_found", `no task ${id}`);
    if (principal.agentOnly && !holder) {
      throw new ApiError("lease_lost", `task ${id} is not leased to an agent this credential registered`, { status: row.status });
    }
    if (row.status !== "leased" || row.lease_token !== leaseToken) {
      throw new ApiError("lease_lost", `the lease token is not the current lease of task ${id} (it is ${row.status})`, {
        status: row.status,
      });
    }
    if (row.lease_expires_at !== null && row.lease_expires_at <= now) {
      throw new ApiError("lease_lost", `the lease of task ${id} expired at ${new Date(row.lease_expires_at).toISOString()}`, {
        status: "expired",
      });
    }
    return row;
  }

  private failAttempt(row: TaskRow, cause: FailureCause, error: TaskError, retryable: boolean, now: number): TaskRecord {
    this.stats.count("failed", 1);
    // A lost agent is not its own fault's measure; a reported failure or an expired lease is.
    if (cause !== "agent_lost" && row.agent_id !== null) this.opts.agentOutcome(row.agent_id, false, null);
    const outcome = afterFailedAttempt({
      attempts: row.attempts,
      maxAttempts: row.max_attempts,
      retryable,
      cause,
      now,
      random01: this.opts.random01(),
    });
    const detail: TaskError = { ...error, attempt: row.attempts };
    if (row.agent_id !== null) this.effects.released.add(row.agent_id);
    if (outcome.status === "dead") return this.finish({ row, status: "dead", error: detail }, now);
    const runAfter = outcome.status === "waiting" ? outcome.runAfter : null;
    const updated = this.sql
      .exec<TaskRow>(
        `UPDATE tasks SET status = ?1, lease_token = NULL, lease_expires_at = NULL, run_after = ?2, timer_at = ?2,
           error = ?3, updated_at = ?4 WHERE seq = ?5 RETURNING *`,
        outcome.status,
        runAfter,
        JSON.stringify(detail),
        now,
        row.seq,
      )
      .one();
    this.moved(row.tenant, row.status, outcome.status);
    if (outcome.status === "queued") this.effects.ready = true;
    noteTimer(this.effects, runAfter);
    return this.record(updated);
  }

  /** Moves a task to a final status and settles every task that waited on it, transitively. */
  private finish(first: Finish, now: number): TaskRecord {
    const retention = this.opts.retentionMs();
    const work: Finish[] = [first];
    let answer: TaskRecord | null = null;
    while (work.length > 0) {
      const { row, status, result = null, error = null } = work.pop()!;
      const updated = this.sql
        .exec<TaskRow>(
          `UPDATE tasks SET status = ?1, result = coalesce(?2, result),
             error = CASE WHEN ?1 = 'succeeded' THEN NULL ELSE coalesce(?3, error) END, lease_token = NULL,
             lease_expires_at = NULL, pending_deps = 0, finished_at = ?4, timer_at = ?5, updated_at = ?4
           WHERE seq = ?6 RETURNING *`,
          status,
          result,
          error === null ? null : JSON.stringify(error),
          now,
          now + retention,
          row.seq,
        )
        .one();
      answer ??= this.record(updated);
      this.moved(row.tenant, row.status, status);
      noteTimer(this.effects, now + retention);
      if (row.status === "leased" && row.agent_id !== null) this.effects.released.add(row.agent_id);
      this.effects.finished.add(row.id);
      this.stats.count(status, 1);
      // Only a waiting task can still be waiting on dependencies of its own.
      if (row.status === "waiting") this.sql.exec("DELETE FROM task_deps WHERE task_seq = ?", row.seq);
      const dependentSeqs = this.sql
        .exec<{ task_seq: number }>("DELETE FROM task_deps WHERE dep_seq = ? RETURNING task_seq", row.seq)
        .toArray()
        .map((r) => r.task_seq)
        .sort((a, b) => a - b);
      for (const seq of dependentSeqs) {
        if (status === "succeeded") {
          this.dependencySucceeded(seq, now);
          continue;
        }
        const dependent = this.sql.exec<TaskRow>("SELECT * FROM tasks WHERE seq = ?", seq).one();
        work.push({ row: dependent, status: "dead", error: dependencyError(updated) });
      }
    }
    return answer!;
  }
}

function dependencyError(dep: TaskRow): TaskError {
  return { message: `dependency ${dep.id} ended ${dep.status}`, code: "dependency_failed", dependency: dep.id };
}

function encodeCursor(seq: number): string {
  return `c${seq.toString(36)}`;
}

function decodeCursor(cursor: string): number {
  const m = /^c([0-9a-z]{1,12})$/.exec(cursor);
  if (!m) throw new ApiError("invalid_request", "cursor is not one this API returned", [{ field: "cursor", message: "malformed" }]);
  return parseInt(m[1]!, 36);
}

/**
 * The statement of a page of tasks in submission order, optionally of one status and one tenant (parameters: the
 * seq to start after, the tenant when `byTenant`, the limit). The status is written as a literal so the planner can
 * use the partial index that holds it: `tasks_by_status` holds every status but leased, and the leased tasks (at
 * most the agents' concurrency) are read from `tasks_by_agent`.
 */
export function listQuery(status: TaskStatus | null, byTenant: boolean): string {
  if (status !== null && !TASK_STATUSES.includes(status)) throw new Error(`not a task status: ${String(status)}`);
  const from = status === "leased" ? "tasks INDEXED BY tasks_by_agent" : "tasks";
  const where = ["seq > ?", ...(status === null ? [] : [`status = '${status}'`]), ...(byTenant ? ["tenant = ?"] : [])];
  return `SELECT * FROM ${from} WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`;
}
