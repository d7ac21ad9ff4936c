/**
 * The queue of one pool shard over its SQLite storage, as one object the pool's operations call. Each operation
 * lives in its own module (submit, lease, settle, attempts, dependencies, redrive, timers, reads, quota); every
 * status change goes through the table of tasks/transitions.ts. Every method is one synchronous step of a
 * transaction the coordinator opens.
 */
import type { Emit } from "../../../contract/events.ts";
import type { LeasedTask, ListPage, Principal, Requirements, Settlement, SettlementResult, SubmitOutcome, TaskError, TaskInput, TaskRecord, TaskStatus } from "../../../contract/records.ts";
import type { LaneStore } from "../lanes.ts";
import type { AgentFit, ReadyRef } from "../queue-rules.ts";
import { anyNeedsResources, holdings, type Holding, type Resources } from "../allocation.ts";
import type { StatsStore } from "../stats.ts";
import * as attempts from "./attempts.ts";
import { TaskContext, type TaskStoreOptions } from "./context.ts";
import { StatusCountDeltas } from "./counts.ts";
import * as leases from "./lease.ts";
import * as moving from "./moves.ts";
import type { MovingTask } from "../../../contract/shard-rpc.ts";
import { checkQuota } from "./quota.ts";
import * as reads from "./reads.ts";
import { redrive } from "./redrive.ts";
import * as settling from "./settle.ts";
import { submit } from "./submit.ts";
import * as timers from "./timers.ts";
import { Gates } from "./gates.ts";
import { TaskMoves } from "./transitions.ts";

export type { TaskStoreOptions } from "./context.ts";
export { LEASE_CHUNK } from "./lease.ts";
export { listQuery } from "./reads.ts";

export class TaskStore {
  readonly counts: StatusCountDeltas;
  /** Concurrency and rate keys (gates.ts). */
  readonly gates: Gates;
  private readonly ctx: TaskContext;

  constructor(sql: SqlStorage, lanes: LaneStore, stats: StatsStore, emit: Emit, timer: (at: number | null) => void, opts: TaskStoreOptions) {
    this.counts = new StatusCountDeltas(sql);
    this.gates = new Gates(sql, { concurrencyLimit: opts.concurrencyLimit, rateLimit: opts.rateLimit, timer });
    const leaseEnded = opts.leaseEnded;
    // Every lease that ends passes here once, whatever ended it (a row leased before leased_at existed has none).
    const moves = new TaskMoves(this.counts, emit, (t) => {
      if (leaseEnded === undefined || t.leased_at === null) return;
      if (t.lane === undefined || t.leased_at === undefined || t.lease_expires_at === undefined) throw new Error(`task ${t.id}: a lease ended without its lane and times`);
      leaseEnded({ tenant: t.tenant, leasedAt: t.leased_at, expiresAt: t.lease_expires_at, gpu: lanes.get(t.lane).requires.gpu });
    }, this.gates);
    this.gates.released = (row) => moves.move("release", row, "waiting", "queued");
    this.ctx = new TaskContext(sql, lanes, stats, this.counts, moves, timer, opts);
  }

  submit(principal: Principal, inputs: readonly TaskInput[], now: number): SubmitOutcome[] {
    this.gates.now = now;
    return submit(this.ctx, principal, inputs, now);
  }

  checkQuota(principal: Principal, idempotencyKeys: readonly (string | null)[]): void {
    checkQuota(this.ctx, principal, idempotencyKeys);
  }

  /** With `lease`: the task only while that lease is its current one (an agent fetching its payload). */
  get(principal: Principal, id: string, lease?: { leaseToken: string; now: number }): TaskRecord {
    return lease === undefined ? reads.get(this.ctx, principal, id) : this.ctx.record(reads.holding(this.ctx, principal, id, lease.leaseToken, lease.now));
  }

  /** The task as stored, whoever's it is (for the mesh's own work: cache fills). */
  record(id: string): TaskRecord | null {
    const row = this.ctx.row(id);
    return row ? this.ctx.record(row) : null;
  }

  list(principal: Principal, status: TaskStatus | null, limit: number, cursor: string | null): ListPage {
    return reads.list(this.ctx, principal, status, limit, cursor);
  }

  missing(principal: Principal, ids: readonly string[]): string[] {
    return reads.missing(this.ctx, principal, ids);
  }

  tenantsOf(ids: readonly string[]): Map<string, string> {
    return reads.tenantsOf(this.ctx, ids);
  }

  inFlight(agentId: string): number {
    return reads.inFlight(this.ctx, agentId);
  }

  ready(agent: AgentFit, n: number): ReadyRef[] {
    return leases.ready(this.ctx, agent, n);
  }

  /** What these agents hold and have free (allocation.ts). */
  holdings(agents: readonly { agentId: string; resources: Resources }[]): Map<string, Holding> {
    return holdings(this.ctx.sql, this.ctx.lanes, agents);
  }

  /** Whether allocation can refuse an agent of this fit a task: some lane it fits takes resources. */
  bounded(agent: AgentFit): boolean {
    return anyNeedsResources(this.ctx.lanes.fitting(agent));
  }

  /** The requirements of a task by its row number. */
  requiresOf(seq: number): Requirements {
    return this.ctx.lanes.get(this.ctx.sql.exec<{ lane: number }>("SELECT lane FROM tasks WHERE seq = ?", seq).one().lane).requires;
  }

  leaseTo(assignments: readonly { seq: number; agentId: string }[], now: number): LeasedTask[] {
    this.gates.now = now;
    return leases.leaseTo(this.ctx, assignments, now);
  }

  lease(agent: AgentFit & { agentId: string }, n: number, now: number): LeasedTask[] {
    this.gates.now = now;
    return leases.lease(this.ctx, agent, n, now);
  }

  complete(principal: Principal, id: string, leaseToken: string, result: string, now: number): TaskRecord {
    this.gates.now = now;
    return settling.complete(this.ctx, principal, id, leaseToken, result, now);
  }

  fail(principal: Principal, id: string, leaseToken: string, error: TaskError, retryable: boolean, now: number): TaskRecord {
    this.gates.now = now;
    return settling.fail(this.ctx, principal, id, leaseToken, error, retryable, now);
  }

  extend(principal: Principal, id: string, leaseToken: string, extendMs: number | null, now: number): number {
    this.gates.now = now;
    return settling.extend(this.ctx, principal, id, leaseToken, extendMs, now).expiresAt;
  }

  settle(principal: Principal, items: readonly Settlement[], now: number): SettlementResult[] {
    this.gates.now = now;
    return settling.settle(this.ctx, principal, items, now);
  }

  cancel(principal: Principal, id: string, now: number): TaskRecord {
    this.gates.now = now;
    return attempts.cancel(this.ctx, principal, id, now);
  }

  releaseAgent(agentId: string, reason: string, now: number): number {
    this.gates.now = now;
    return attempts.releaseAgent(this.ctx, agentId, reason, now);
  }

  redrive(principal: Principal, ids: readonly string[] | null, now: number, limit: number, afterSeq = 0): ReturnType<typeof redrive> {
    this.gates.now = now;
    return redrive(this.ctx, principal, ids, now, limit, afterSeq);
  }

  nextTimer(): number | null {
    return timers.nextTimer(this.ctx);
  }

  // ---- moving between shards (a drain) ------------------------------------------------------------------

  exportMovable(targets: readonly number[], limit: number, now: number): number {
    this.gates.now = now;
    return moving.exportMovable(this.ctx, targets, limit, now);
  }

  outbox(limit: number): Map<number, MovingTask[]> {
    return moving.outbox(this.ctx, limit);
  }

  outboxSize(): number {
    return moving.outboxSize(this.ctx);
  }

  handedOver(ids: readonly string[], now: number): void {
    this.gates.now = now;
    moving.handedOver(this.ctx, ids, now);
  }

  adopt(tasks: readonly MovingTask[], now: number): number {
    this.gates.now = now;
    return moving.adopt(this.ctx, tasks, now);
  }

  /** Whether any task could still move: not leased, no dependency either way. */
  movable(): boolean {
    return this.ctx.sql.exec("SELECT 1 FROM tasks WHERE status IN ('queued', 'waiting') AND pending_deps = 0 AND NOT EXISTS (SELECT 1 FROM task_deps WHERE dep_seq = tasks.seq) LIMIT 1").toArray().length > 0;
  }

  /** Tasks not final, of every tenant. */
  unfinished(): number {
    return this.ctx.sql.exec<{ n: number | null }>("SELECT sum(n) AS n FROM status_counts WHERE status IN ('waiting', 'queued', 'leased')").one().n ?? 0;
  }

  purgeForwarding(now: number, limit: number): number {
    this.gates.now = now;
    return moving.purgeForwarding(this.ctx, now, limit);
  }

  nextForwardingPurge(): number | null {
    return moving.nextForwardingPurge(this.ctx);
  }

  runTimers(now: number, limit?: number): number {
    this.gates.now = now;
    return timers.runTimers(this.ctx, now, limit);
  }
}
