import { DurableObject } from "cloudflare:workers";
import { ok, type Outcome } from "../../contract/errors.ts";
import type { PoolRpc } from "../../contract/pool-rpc.ts";
import type { CacheCount, AgentCounts, AgentInput, AgentLoad, AgentMember, AgentRecord, AgentState, AgentWithInterval, LeasedTask, ListPage, PoolConfig, PoolConfigPatch, PoolMetrics, PoolUsage, Principal, RedriveOutcome, RouteReason, Settlement, SettlementResult, ShardList, ShardLoad, ShardStats, StatusCounts, SubmitOutcome, TaskError, TaskInput, TaskRecord, TaskStatus, TenantValues, TenantValuesPatch } from "../../contract/records.ts";
import { isFinal } from "../../contract/records.ts";
import type { PoolCore } from "./core.ts";
import { agentCounts, poolMetrics, poolStats, statusCounts } from "./observe.ts";
import { Parts } from "./parts.ts";
import { applied } from "./results.ts";
import { acceptAgentSocket } from "./sockets/accept.ts";
import { attachmentOf, CLOSE, closeQuietly } from "./sockets/attachment.ts";
import type { Digest, HeldKey, MovingTask, PoolSnapshot, Section, SharedStateSummary, ShardRpc } from "../../contract/shard-rpc.ts";

/** Dead tasks one redrive call moves per transaction. */
const REDRIVE_CHUNK = 1_000;

/**
 * The coordinator of one pool shard (contract/pool-rpc.ts): a thin shell. Each RPC method is one operation of
 * the transaction shell (shell.ts) over the pool's state (core.ts); sockets, pushes, audit batching, result
 * sealing and the drain hand-over are capabilities of their own (parts.ts). The object's name is the pool
 * (shard 0) or `<pool>#<shard>`.
 */
export class PoolCoordinator extends DurableObject<Env> implements PoolRpc, ShardRpc {
  /** Time source; tests replace it to move time forward without waiting. */
  clock: () => number = () => Date.now();

  private readonly parts: Parts;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.parts = new Parts(ctx, env, () => this.clock());
    void ctx.blockConcurrencyWhile(() => this.parts.shell.start());
  }

  /** The pool's state, once it exists (tests reach in through this). */
  get core(): PoolCore | null {
    return this.parts.shell.core;
  }

  private get shell() {
    return this.parts.shell;
  }

  // ---- tasks ----------------------------------------------------------------------------------------------

  async submit(principal: Principal, inputs: TaskInput[], plaintexts?: string[], routed?: Partial<Record<RouteReason, number>>): Promise<Outcome<SubmitOutcome[]> & { load?: ShardLoad; room?: number }> {
    const { sockets, plaintexts: held } = this.parts;
    const out = await this.shell.change(true, (core, now) => {
      const outcomes = core.submit(principal, inputs, now, routed);
      // Plaintexts are kept only while an agent could be pushed the task at once.
      if (plaintexts?.length === inputs.length && sockets.size > 0) {
        outcomes.forEach((o, i) => o.created && o.task.payload === inputs[i]!.payload && held.remember(o.task.payload, plaintexts[i]!));
      }
      return outcomes;
    });
    const core = this.core;
    return core ? { ...out, load: core.load(this.clock()), room: core.quotaRoom(principal.tenant) } : out;
  }

  async checkQuota(principal: Principal, idempotencyKeys: (string | null)[]): Promise<Outcome<null>> {
    return this.core ? this.shell.read((core) => (core.tasks.checkQuota(principal, idempotencyKeys), null)) : ok(null);
  }

  async missingDependencies(principal: Principal, ids: string[]): Promise<Outcome<string[]>> {
    return this.core ? this.shell.read((core) => core.tasks.missing(principal, ids)) : ok(ids);
  }

  async getTask(principal: Principal, id: string, leaseToken?: string): Promise<Outcome<TaskRecord>> {
    return this.handedOver(this.shell.read((core) => core.tasks.get(principal, id, leaseToken === undefined ? undefined : { leaseToken, now: this.clock() })));
  }

  async waitResult(principal: Principal, id: string, waitMs: number): Promise<Outcome<TaskRecord>> {
    const first = await this.getTask(principal, id);
    if (!first.ok || isFinal(first.value.status) || waitMs <= 0) return first;
    await this.parts.resultSignals.wait(id, waitMs);
    return this.getTask(principal, id);
  }

  async cancel(principal: Principal, id: string): Promise<Outcome<TaskRecord>> {
    return this.handedOver(await this.shell.change(false, (core, now) => core.tasks.cancel(principal, id, now)));
  }

  async complete(principal: Principal, id: string, leaseToken: string, result: string): Promise<Outcome<TaskRecord>> {
    const apply = ([sealed]: Settlement[]) => this.shell.change(false, (core, now) => (core.requireCertificate(principal), core.tasks.complete(principal, id, leaseToken, sealed?.action === "complete" ? sealed.result : result, now)));
    // A result written to R2 for a completion that was refused is deleted again.
    return this.handedOver(await this.parts.results.settling([{ action: "complete", id, leaseToken, result }], apply, (out) => [out.ok]));
  }

  async fail(principal: Principal, id: string, leaseToken: string, errorJson: string, retryable: boolean): Promise<Outcome<TaskRecord>> {
    return this.handedOver(await this.shell.change(false, (core, now) => (core.requireCertificate(principal), core.tasks.fail(principal, id, leaseToken, JSON.parse(errorJson) as TaskError, retryable, now))));
  }

  async extend(principal: Principal, id: string, leaseToken: string, extendMs: number | null): Promise<Outcome<number>> {
    return this.handedOver(await this.shell.change(false, (core, now) => (core.requireCertificate(principal), core.tasks.extend(principal, id, leaseToken, extendMs, now))));
  }

  async settle(principal: Principal, items: Settlement[]): Promise<Outcome<SettlementResult[]>> {
    return this.parts.results.settling(items, (sealed) => this.shell.change(false, (core, now) => core.settle(principal, sealed, now)), applied);
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
    if (out.ok) this.parts.sockets.closeAgent(agentId, CLOSE.agentRemoved, "the agent was deleted");
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
    const later = await this.parts.leaseWaiters.wait(waitMs, () => {
      const next = attempt();
      return !next.ok || next.value.length > 0 ? next : null;
    });
    await this.shell.settle();
    return later ?? ok([]);
  }

  async closeSocketsOfKey(keyId: string): Promise<number> {
    return this.parts.sockets.closeOfKey(keyId);
  }

  /** What a new shard of the pool copies from this one (configuration, tenants and their values, agents). */
  async poolSnapshot(): Promise<Outcome<PoolSnapshot>> {
    return this.shell.read((core) => core.snapshot());
  }

  /** Becomes a shard of the snapshot's pool. */
  async joinPool(snapshot: PoolSnapshot): Promise<Outcome<null>> {
    return this.shell.change(true, (core, now) => (core.joinPool(snapshot, now), null));
  }

  async agentsAtHome(): Promise<{ agentId: string; metadata: string }[]> {
    return this.core ? this.core.agents.atHome() : [];
  }

  async setAgentHome(agentIds: string[], home: boolean): Promise<Outcome<null>> {
    return this.shell.change(false, (core) => (core.agents.setHome(agentIds, home), null));
  }

  // ---- the pool and its shards ----------------------------------------------------------------------------

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

  async stats(principal: Principal): Promise<Outcome<ShardStats>> {
    return this.shell.read((core) => (core.tenants.require(principal), poolStats(core, principal, this.clock())));
  }

  async counts(principal: Principal): Promise<Outcome<{ queue: StatusCounts; agents: AgentCounts }>> {
    return this.shell.read((core) => (core.tenants.require(principal), { queue: statusCounts(core, principal), agents: agentCounts(core) }));
  }

  async metrics(principal: Principal): Promise<Outcome<PoolMetrics>> {
    return this.shell.read((core) => poolMetrics(core, principal));
  }
  async usage(_principal: Principal, tenant: string, from: number, to: number): Promise<Outcome<PoolUsage | null>> { return this.core ? this.shell.read((core) => core.usage.read(core.pool, tenant, from, to)) : ok(null); }

  /** The pool's shard list from the Worker (a shard told it drains starts handing its tasks over). */
  async setPeers(list: ShardList): Promise<ShardList> {
    const out = await this.shell.change(true, (core, now) => core.updatePeers(list, now));
    return out.ok ? out.value : list;
  }

  /** Tasks a draining shard of the pool hands over. */
  async adopt(tasks: MovingTask[]): Promise<Outcome<number>> {
    return this.shell.change(true, (core, now) => core.adopt(tasks, now));
  }

  /** Keyed submits go through the pool's key index from now on; the keys this shard holds, to seed it. */
  async indexKeys(): Promise<Outcome<HeldKey[]>> {
    return this.shell.change(false, (core) => core.peers.indexKeys());
  }

  // ---- shared state (gossip/) ----------------------------------------------------------------------------------

  async gossipExchange(from: number, digest: Digest): Promise<{ delta: Uint8Array | null; want: Section[] } | null> {
    return this.parts.gossip.exchange(from, digest);
  }

  async gossipPush(from: number, delta: Uint8Array): Promise<boolean> {
    return this.parts.gossip.push(from, delta);
  }

  async sharedState(): Promise<SharedStateSummary> {
    return this.parts.gossip.summary(this.parts.shell.home.shard);
  }

  /** Test hooks (DAA_TEST_HOOKS=1 only): drop the exchanges with these shards; run one round now. */
  async gossipTestHook(blocked: number[] | null, round: boolean): Promise<number[] | null> {
    if ((this.env as { DAA_TEST_HOOKS?: string }).DAA_TEST_HOOKS !== "1") return null;
    if (blocked !== null) this.parts.gossip.blocked = new Set(blocked);
    return round ? this.parts.gossip.round() : [];
  }

  /** The pool's cache settings, for the Worker's lookup before a submit (null: no such pool). */
  async cacheConfig(): Promise<PoolConfig["cache"] | null> {
    return this.core ? this.core.config().cache : null;
  }

  /** Cache hits the Worker answered (they write no task row), counted in the pool's metrics. */
  async countCache(counts: CacheCount[]): Promise<void> {
    await this.shell.change(false, (core) => counts.forEach((c) => core.stats.count(`cache.${c.outcome} ${c.type}`, c.n)));
  }

  /** This shard's load summary (queued work, drain rate, agents). */
  async loadSummary(): Promise<ShardLoad | null> {
    return this.core ? this.core.load(this.clock()) : null;
  }

  // ---- WebSocket push (hibernation API) and the alarm -----------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    return acceptAgentSocket(request, { sockets: this.parts.sockets, apply: (fn) => this.shell.apply(false, fn), settle: () => this.shell.settle() });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    await this.parts.inbox.receive(ws, raw);
  }

  /** A closed socket is not a failure: the agent's leases stay until its heartbeats are missed. */
  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.parts.sockets.changed();
    closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    console.warn(`agent ${attachmentOf(ws).agentId}: WebSocket error`, error);
  }

  override async alarm(): Promise<void> {
    await this.shell.alarm();
  }

  /** A lookup of a task this shard is still handing over waits for the hand-over, then says where it went. */
  private async handedOver<T>(out: Outcome<T>): Promise<Outcome<T>> {
    const details = out.ok ? undefined : out.error.details;
    if (details && !Array.isArray(details) && details.moving === true) await this.parts.drain.flush();
    return out;
  }
}
