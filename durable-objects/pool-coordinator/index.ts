import { DurableObject } from "cloudflare:workers";
import { ok, type Outcome } from "../../contract/errors.ts";
import type { PoolRpc } from "../../contract/pool-rpc.ts";
import type { AgentCounts, AgentInput, AgentLoad, AgentRecord, AgentState, AgentWithInterval, LeasedTask, ListPage, PoolConfig, PoolConfigPatch, PoolMetrics, PoolStats, Principal, RedriveOutcome, Settlement, SettlementResult, StatusCounts, SubmitOutcome, TaskError, TaskInput, TaskRecord, TaskStatus, TenantValues, TenantValuesPatch } from "../../contract/records.ts";
import { isFinal } from "../../contract/records.ts";
import { Timers } from "../shared/timers.ts";
import type { RoundRobinState } from "./agents/balancing.ts";
import { AuditBatcher } from "./audit-batcher.ts";
import type { PoolCore } from "./core.ts";
import { PoolEvents } from "./events.ts";
import { agentCounts, poolMetrics, poolStats, statusCounts } from "./observe.ts";
import { PlaintextCache } from "./plaintexts.ts";
import { ResultSealer } from "./results.ts";
import { PoolShell } from "./shell.ts";
import { acceptAgentSocket } from "./sockets/accept.ts";
import { attachmentOf, CLOSE, closeQuietly } from "./sockets/attachment.ts";
import { Inbox } from "./sockets/inbox.ts";
import { Outbox } from "./sockets/outbox.ts";
import { SocketRegistry } from "./sockets/registry.ts";
import { KeyedSignals, WaitList } from "./waiters.ts";

/** Characters of plaintext payloads held for push (about 8 MB as UTF-16). */
const PLAINTEXT_CACHE_CHARS = 4_000_000;
/** Dead tasks one redrive call moves per transaction. */
const REDRIVE_CHUNK = 1_000;

/**
 * The coordinator of one pool shard (contract/pool-rpc.ts): a thin shell. Each RPC method is one operation of
 * the shell (shell.ts: a transaction, then what follows it) over the pool's state (core.ts); sockets, pushes,
 * audit batching and result sealing are capabilities of their own. The object's name is the pool (shard 0) or
 * `<pool>#<shard>`.
 */
export class PoolCoordinator extends DurableObject<Env> implements PoolRpc {
  /** Time source; tests replace it to move time forward without waiting. */
  clock: () => number = () => Date.now();

  private readonly sockets: SocketRegistry;
  private readonly timers: Timers;
  private readonly shell: PoolShell;
  private readonly inbox: Inbox;
  private readonly outbox: Outbox;
  private readonly audit: AuditBatcher;
  private readonly results: ResultSealer;
  private readonly plaintexts = new PlaintextCache(PLAINTEXT_CACHE_CHARS);
  /** Weighted round robin scores: scheduling state, rebuilt from zero after a restart. */
  private readonly roundRobin: RoundRobinState = new Map();
  private readonly leaseWaiters = new WaitList<Outcome<LeasedTask[]>>();
  private readonly resultSignals = new KeyedSignals();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const clock = () => this.clock();
    this.sockets = new SocketRegistry(ctx);
    this.timers = new Timers(ctx.storage);
    this.audit = new AuditBatcher({ logs: env.AUDIT, waitUntil: (p) => ctx.waitUntil(p) });
    this.results = new ResultSealer({ env, tenantsOf: (ids) => this.shell.core?.tasks.tenantsOf(ids) ?? null });
    this.outbox = new Outbox({ env, sockets: this.sockets, plaintexts: this.plaintexts, tenants: this.results.tenants, audit: this.audit });
    const events = new PoolEvents({
      reapTerminating: (agentIds) => this.shell.core?.agents.reapTerminating(agentIds),
      pushRound: () => this.pushRound(),
      send: (pushed) => this.outbox.send(pushed),
      pokeLeaseWaiters: () => this.leaseWaiters.size > 0 && this.leaseWaiters.poke(),
      signalFinished: (ids) => {
        this.resultSignals.signal(ids);
        for (const id of ids) this.results.tenants.forget(id);
      },
    });
    this.shell = new PoolShell({
      storage: ctx.storage,
      name: ctx.id.name,
      clock,
      events,
      timers: this.timers,
      list: (pool, tenant, at) => env.DIRECTORY.getByName("mesh").register(pool, tenant, at),
      pushed: () => this.outbox.idle(),
    });
    const apply = <T>(fn: (core: PoolCore, now: number) => T) => this.shell.apply(false, fn);
    this.inbox = new Inbox({ clock, apply, settle: () => this.shell.settle(), seal: (items) => this.results.seal(items), audit: this.audit });
    void ctx.blockConcurrencyWhile(() => this.shell.start());
  }

  /** The pool's state, once it exists (tests reach in through this). */
  get core(): PoolCore | null {
    return this.shell.core;
  }

  // ---- tasks ----------------------------------------------------------------------------------------------

  async submit(principal: Principal, inputs: TaskInput[], plaintexts?: string[]): Promise<Outcome<SubmitOutcome[]>> {
    return this.shell.change(true, (core, now) => {
      const outcomes = core.submit(principal, inputs, now);
      // Plaintexts are kept only while an agent could be pushed the task at once.
      if (plaintexts?.length === inputs.length && this.sockets.size > 0) {
        outcomes.forEach((o, i) => o.created && o.task.payload === inputs[i]!.payload && this.plaintexts.remember(o.task.payload, plaintexts[i]!));
      }
      return outcomes;
    });
  }

  async checkQuota(principal: Principal, idempotencyKeys: (string | null)[]): Promise<Outcome<null>> {
    if (!this.core) return ok(null);
    return this.shell.read((core) => (core.tasks.checkQuota(principal, idempotencyKeys), null));
  }

  async missingDependencies(principal: Principal, ids: string[]): Promise<Outcome<string[]>> {
    if (!this.core) return ok(ids);
    return this.shell.read((core) => core.tasks.missing(principal, ids));
  }

  async getTask(principal: Principal, id: string): Promise<Outcome<TaskRecord>> {
    return this.shell.read((core) => core.tasks.get(principal, id));
  }

  async waitResult(principal: Principal, id: string, waitMs: number): Promise<Outcome<TaskRecord>> {
    const first = await this.getTask(principal, id);
    if (!first.ok || isFinal(first.value.status) || waitMs <= 0) return first;
    await this.resultSignals.wait(id, waitMs);
    return this.getTask(principal, id);
  }

  async cancel(principal: Principal, id: string): Promise<Outcome<TaskRecord>> {
    return this.shell.change(false, (core, now) => core.tasks.cancel(principal, id, now));
  }

  async complete(principal: Principal, id: string, leaseToken: string, result: string): Promise<Outcome<TaskRecord>> {
    const [sealed] = await this.results.seal([{ action: "complete", id, leaseToken, result }]);
    const sealedResult = sealed?.action === "complete" ? sealed.result : result;
    return this.shell.change(false, (core, now) => (core.requireCertificate(principal), core.tasks.complete(principal, id, leaseToken, sealedResult, now)));
  }

  async fail(principal: Principal, id: string, leaseToken: string, errorJson: string, retryable: boolean): Promise<Outcome<TaskRecord>> {
    return this.shell.change(false, (core, now) => (core.requireCertificate(principal), core.tasks.fail(principal, id, leaseToken, JSON.parse(errorJson) as TaskError, retryable, now)));
  }

  async extend(principal: Principal, id: string, leaseToken: string, extendMs: number | null): Promise<Outcome<number>> {
    return this.shell.change(false, (core, now) => (core.requireCertificate(principal), core.tasks.extend(principal, id, leaseToken, extendMs, now)));
  }

  async settle(principal: Principal, items: Settlement[]): Promise<Outcome<SettlementResult[]>> {
    const sealed = await this.results.seal(items);
    return this.shell.change(false, (core, now) => core.settle(principal, sealed, now));
  }

  async listTasks(principal: Principal, status: TaskStatus | null, limit: number, cursor: string | null): Promise<Outcome<ListPage>> {
    return this.shell.read((core) => (core.tenants.require(principal), core.tasks.list(principal, status, limit, cursor)));
  }

  /** Dead tasks back to the queue, in transactions of a thousand so a large DLQ never blocks the pool. */
  async redrive(principal: Principal, ids: string[] | null): Promise<Outcome<RedriveOutcome>> {
    let redriven = 0;
    let afterSeq = 0;
    const skipped: string[] = [];
    for (;;) {
      const step = await this.shell.change(false, (core, now) => (core.tenants.require(principal), core.tasks.redrive(principal, ids, now, REDRIVE_CHUNK, afterSeq)));
      if (!step.ok) return step;
      redriven += step.value.redriven;
      skipped.push(...step.value.skipped);
      afterSeq = step.value.lastSeq;
      if (!step.value.more) return ok({ redriven, skipped });
    }
  }

  // ---- agents ---------------------------------------------------------------------------------------------

  async registerAgent(principal: Principal, input: AgentInput): Promise<Outcome<AgentWithInterval>> {
    return this.shell.change(true, (core, now) => ({ ...core.registerAgent(principal, input, now), heartbeatIntervalMs: core.config().heartbeatIntervalMs }));
  }

  async getAgent(principal: Principal, agentId: string): Promise<Outcome<AgentRecord>> {
    return this.shell.read((core) => core.agents.get(principal, agentId));
  }

  async listAgents(principal: Principal): Promise<Outcome<AgentRecord[]>> {
    return this.shell.read((core) => (core.tenants.require(principal), core.agents.list(principal)));
  }

  async transitionAgent(principal: Principal, agentId: string, to: AgentState): Promise<Outcome<AgentRecord>> {
    return this.shell.change(false, (core, now) => core.transitionAgent(principal, agentId, to, now));
  }

  async deleteAgent(principal: Principal, agentId: string): Promise<Outcome<null>> {
    const out = await this.shell.change(false, (core, now) => (core.deleteAgent(principal, agentId, now), null));
    if (out.ok) this.sockets.closeAgent(agentId, CLOSE.agentRemoved, "the agent was deleted");
    return out;
  }

  async heartbeat(principal: Principal, agentId: string, load: AgentLoad | null): Promise<Outcome<AgentWithInterval>> {
    return this.shell.change(false, (core, now) => ({ ...core.heartbeat(principal, agentId, load, now), heartbeatIntervalMs: core.config().heartbeatIntervalMs }));
  }

  async lease(principal: Principal, agentId: string, max: number, waitMs: number): Promise<Outcome<LeasedTask[]>> {
    const attempt = (): Outcome<LeasedTask[]> => this.shell.apply(false, (core, now) => core.lease(principal, agentId, max, now));
    const first = attempt();
    if (!first.ok || first.value.length > 0 || waitMs <= 0) {
      await this.shell.settle();
      return first;
    }
    const later = await this.leaseWaiters.wait(waitMs, () => {
      const next = attempt();
      return !next.ok || next.value.length > 0 ? next : null;
    });
    await this.shell.settle();
    return later ?? ok([]);
  }

  async closeSocketsOfKey(keyId: string): Promise<number> {
    return this.sockets.closeOfKey(keyId);
  }

  // ---- the pool -------------------------------------------------------------------------------------------

  async getConfig(principal: Principal): Promise<Outcome<PoolConfig>> {
    return this.shell.read((core) => (core.tenants.require(principal), core.config()));
  }

  async updateConfig(principal: Principal, patch: PoolConfigPatch): Promise<Outcome<PoolConfig>> {
    return this.shell.change(true, (core, now) => core.updateConfig(principal, patch, now));
  }

  async getTenantValues(principal: Principal, tenant: string): Promise<Outcome<TenantValues>> {
    return this.shell.read((core) => core.tenantValues(principal, tenant));
  }

  async updateTenantValues(principal: Principal, tenant: string, patch: TenantValuesPatch): Promise<Outcome<TenantValues>> {
    return this.shell.change(true, (core, now) => core.updateTenantValues(principal, tenant, patch, now));
  }

  async stats(principal: Principal): Promise<Outcome<PoolStats>> {
    return this.shell.read((core) => (core.tenants.require(principal), poolStats(core, principal, this.clock())));
  }

  async counts(principal: Principal): Promise<Outcome<{ queue: StatusCounts; agents: AgentCounts }>> {
    return this.shell.read((core) => (core.tenants.require(principal), { queue: statusCounts(core, principal), agents: agentCounts(core) }));
  }

  async metrics(principal: Principal): Promise<Outcome<PoolMetrics>> {
    return this.shell.read((core) => poolMetrics(core, principal));
  }

  // ---- WebSocket push (hibernation API) and the alarm -----------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    return acceptAgentSocket(request, { sockets: this.sockets, apply: (fn) => this.shell.apply(false, fn), settle: () => this.shell.settle() });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    await this.inbox.receive(ws, raw);
  }

  /** A closed socket is not a failure: the agent's leases stay until its heartbeats are missed. */
  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.sockets.changed();
    closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    console.warn(`agent ${attachmentOf(ws).agentId}: WebSocket error`, error);
  }

  override async alarm(): Promise<void> {
    await this.shell.alarm();
  }

  /** Inside a change's transaction: ready work to connected agents with credits (dispatch.ts). */
  private pushRound(): Map<string, LeasedTask[]> | null {
    const core = this.shell.core;
    if (!core || this.sockets.size === 0) return null;
    const connected = this.sockets.connected(this.clock(), core.config().requireClientCert);
    if (connected.size === 0) return null;
    const pushed = core.dispatch(connected, this.roundRobin, this.clock());
    return pushed.size === 0 ? null : pushed;
  }
}
