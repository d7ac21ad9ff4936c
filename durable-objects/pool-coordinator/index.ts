import { DurableObject } from "cloudflare:workers";
import { ApiError, ERROR_STATUS, ok, type ErrorBody, type Outcome } from "../../src/shared/errors";
import { presentLeased } from "../../src/presenters";
import { openTasks } from "../../src/security/sealing";
import { PlaintextCache } from "./plaintexts";
import { TaskTenants } from "./task-tenants";
import type { RoundRobinState } from "./balancing";
import { frame, parseFrame, settlementsOf, type AgentMessage } from "./protocol";
import type { PoolConfigPatch } from "./config";
import { LISTING_RETRY_MS, PoolCore, poolNotFound } from "./core";
import type { OptionalSecrets } from "../../src/env";
import { encryptField, keyringFromEnv } from "../../src/security/keyring";
import { parseShardName } from "./ids";
import { isFinal } from "./queue-rules";
import { schemaExists } from "./schema";
import type { ListPage, SubmitOutcome } from "./tasks";
import { ALARM_BATCH, needsRearm } from "./timers";
import type {
  AgentInput,
  AgentLoad,
  AgentRecord,
  AgentState,
  LeasedTask,
  PoolConfig,
  PoolMetrics,
  PoolStats,
  Principal,
  Settlement,
  SettlementResult,
  StatusCounts,
  TaskError,
  TaskInput,
  TaskRecord,
  TaskStatus,
} from "./types";
import { KeyedSignals, WaitList } from "./waiters";
import type { AuditEntry } from "../audit-log/chain";
import { idsOfOtherTenants, recordAuditBatch } from "../../src/security/audit";

/** A frame waiting for the next group commit. */
interface PendingFrame {
  ws: WebSocket;
  attachment: SocketAttachment;
  messages: AgentMessage[];
}

type FrameOutcome =
  | { ok: true; results: SettlementResult[]; state: { state: string; heartbeatIntervalMs: number } | null }
  | { ok: false; error: ErrorBody };

/**
 * Applies one agent frame inside the group's transaction: a sign of life, credits, then its settlements in order.
 * A refusal of the whole frame (no client certificate) is thrown before it writes anything, so it is answered
 * without undoing the other frames of the group.
 */
function applyFrame(core: PoolCore, f: PendingFrame, sealed: Settlement[], now: number): FrameOutcome {
  const { agentId, principal } = f.attachment;
  let load: AgentLoad | null = null;
  let credits = 0;
  let heartbeat = false;
  for (const m of f.messages) {
    if (m.type === "heartbeat") {
      heartbeat = true;
      if (m.load) load = m.load;
    }
    if (m.type === "ready") credits += m.credits;
  }
  let results: SettlementResult[];
  try {
    results = sealed.length > 0 ? core.settle(principal, sealed, now) : [];
  } catch (err) {
    if (err instanceof ApiError) return { ok: false, error: err.toBody() };
    throw err;
  }
  // Every frame is a sign of life.
  core.seen(agentId, load, now);
  if (credits > 0) {
    core.agents.addCredits(agentId, credits);
    core.tasks.effects.agentsChanged = true;
  }
  // A heartbeat is answered with the agent's state and the interval to keep (an extension of the protocol): an
  // agent on a socket learns a new interval, or that it was told to terminate, without an HTTP call.
  const state = heartbeat ? { state: core.agents.row(agentId)?.state ?? "terminating", heartbeatIntervalMs: core.config().heartbeatIntervalMs } : null;
  return { ok: true, results, state };
}

function expired(principal: Principal, now: number): boolean {
  return principal.expiresAt !== undefined && principal.expiresAt !== null && now >= principal.expiresAt;
}

/** What a hibernated socket remembers: whose it is, who opened it, and from where (for the audit trail). */
interface SocketAttachment {
  agentId: string;
  principal: Principal;
  actor: string;
  ip: string | null;
}

/** Socket traffic waiting for its audit record (see PoolCoordinator.auditLater). */
interface PendingAudit {
  socket: SocketAttachment;
  action: string;
  outcome: string;
  ids: string[];
  /** When the first frame of the record was handled. */
  at: number;
}

/** Characters of plaintext payloads held for push (about 8 MB as UTF-16). */
const PLAINTEXT_CACHE_CHARS = 4_000_000;
/** Tenants of pushed tasks held in memory (an id and a tenant: about 100 bytes each). */
const TASK_TENANTS_HELD = 100_000;
/** How long audit records of socket traffic gather before they go to the audit log in one append. */
const AUDIT_FLUSH_MS = 100;

/** A socket whose credential ran out is closed with this code: the agent reconnects with a fresh token. */
const CLOSE_CREDENTIAL_EXPIRED = 4001;
const CLOSE_AGENT_REMOVED = 4002;
/** The sockets opened with an API key (or a token from it) close with this code when the key is revoked. */
const CLOSE_CREDENTIAL_REVOKED = 4003;

/** Most timers one alarm works off before it hands the object back to requests and re-arms itself. */
const ALARM_ROUNDS = 8;
/** Dead tasks one redrive call moves per transaction. */
const REDRIVE_CHUNK = 1_000;

/**
 * The coordinator of one pool shard: a thin shell over PoolCore. Each RPC method runs its change as one
 * synchronous SQLite transaction, then wakes long-polling callers and moves the single alarm if needed.
 * The object's name is the pool (shard 0) or `<pool>#<shard>`.
 */
export class PoolCoordinator extends DurableObject<Env> {
  /** Time source; tests replace it to move time forward without waiting. */
  clock: () => number = () => Date.now();

  private core: PoolCore | null = null;
  private armedAt: number | null = null;
  /** Weighted round robin scores: scheduling state, rebuilt from zero after a restart. */
  private readonly roundRobin: RoundRobinState = new Map();
  private readonly leaseWaiters = new WaitList<Outcome<LeasedTask[]>>();
  private readonly resultSignals = new KeyedSignals();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      // A pool that was never written to has no tables; reads of it answer 404 without creating any.
      if (schemaExists(ctx.storage.sql)) {
        this.open();
        // Re-arm from the timers themselves: an alarm may have been lost with the process.
        await this.rearmAlarm();
        await this.afterCommit();
      }
    });
  }

  // ---- tasks ----------------------------------------------------------------------------------------------

  /**
   * Inputs carry payloads already sealed by the Worker with the submitting tenant's key; `plaintexts` (in input
   * order, optional) are the same payloads in clear, kept in memory only, so that a task pushed to a connected
   * agent right away is not decrypted again.
   */
  async submit(principal: Principal, inputs: TaskInput[], plaintexts?: string[]): Promise<Outcome<SubmitOutcome[]>> {
    return this.change(true, (core, now) => {
      const outcomes = core.submit(principal, inputs, now);
      if (plaintexts?.length === inputs.length && this.sockets().size > 0) {
        outcomes.forEach((o, i) => {
          if (o.created && o.task.payload === inputs[i]!.payload) this.plaintexts.remember(o.task.payload, plaintexts[i]!);
        });
      }
      return outcomes;
    });
  }

  /** Plaintext payloads of tasks just submitted, by envelope (memory only; see {@link PlaintextCache}). */
  private readonly plaintexts = new PlaintextCache(PLAINTEXT_CACHE_CHARS);
  /** The tenants of tasks pushed to agents, to seal their results without a read (memory only; see {@link TaskTenants}). */
  private readonly taskTenants = new TaskTenants(TASK_TENANTS_HELD);

  /** Whether tasks with these idempotency keys (null: none) fit in the tenant's quota; a pool not yet written has room. */
  async checkQuota(principal: Principal, idempotencyKeys: (string | null)[]): Promise<Outcome<null>> {
    if (!this.core) return ok(null);
    return this.read((core) => {
      core.tasks.checkQuota(principal, idempotencyKeys);
      return null;
    });
  }

  async missingDependencies(principal: Principal, ids: string[]): Promise<Outcome<string[]>> {
    if (!this.core) return ok(ids);
    return this.read((core) => core.tasks.missing(principal, ids));
  }

  async getTask(principal: Principal, id: string): Promise<Outcome<TaskRecord>> {
    return this.read((core) => core.tasks.get(principal, id));
  }

  /** The task once final, waiting up to `waitMs` for it to get there. */
  async waitResult(principal: Principal, id: string, waitMs: number): Promise<Outcome<TaskRecord>> {
    const first = this.read((core) => core.tasks.get(principal, id));
    if (!first.ok || isFinal(first.value.status) || waitMs <= 0) return first;
    await this.resultSignals.wait(id, waitMs);
    return this.read((core) => core.tasks.get(principal, id));
  }

  async cancel(principal: Principal, id: string): Promise<Outcome<TaskRecord>> {
    return this.change(false, (core, now) => core.tasks.cancel(principal, id, now));
  }

  /** `result` is JSON text; it is sealed here with the key of the task's tenant before it is stored. */
  async complete(principal: Principal, id: string, leaseToken: string, result: string): Promise<Outcome<TaskRecord>> {
    const [sealed] = await this.sealResults([{ action: "complete", id, leaseToken, result }]);
    const sealedResult = sealed?.action === "complete" ? sealed.result : result;
    return this.change(false, (core, now) => {
      core.requireCertificate(principal);
      return core.tasks.complete(principal, id, leaseToken, sealedResult, now);
    });
  }

  /** `errorJson`: JSON text of the agent's error object (it has at least a `message`). */
  async fail(principal: Principal, id: string, leaseToken: string, errorJson: string, retryable: boolean): Promise<Outcome<TaskRecord>> {
    return this.change(false, (core, now) => {
      core.requireCertificate(principal);
      return core.tasks.fail(principal, id, leaseToken, JSON.parse(errorJson) as TaskError, retryable, now);
    });
  }

  async extend(principal: Principal, id: string, leaseToken: string, extendMs: number | null): Promise<Outcome<number>> {
    return this.change(false, (core, now) => {
      core.requireCertificate(principal);
      return core.tasks.extend(principal, id, leaseToken, extendMs, now);
    });
  }

  /** Several completions, failures and extensions of leases in this pool, applied in one transaction. */
  async settle(principal: Principal, items: Settlement[]): Promise<Outcome<SettlementResult[]>> {
    const sealed = await this.sealResults(items);
    return this.change(false, (core, now) => core.settle(principal, sealed, now));
  }

  async listTasks(principal: Principal, status: TaskStatus | null, limit: number, cursor: string | null): Promise<Outcome<ListPage>> {
    return this.read((core) => {
      core.requireTenant(principal);
      return core.tasks.list(principal, status, limit, cursor);
    });
  }

  /** Dead tasks back to the queue, in transactions of a thousand so a large DLQ never blocks the pool. */
  async redrive(principal: Principal, ids: string[] | null): Promise<Outcome<{ redriven: number; skipped: string[] }>> {
    let redriven = 0;
    let afterSeq = 0;
    const skipped: string[] = [];
    for (;;) {
      const step = await this.change(false, (core, now) => {
        core.requireTenant(principal);
        return core.tasks.redrive(principal, ids, now, REDRIVE_CHUNK, afterSeq);
      });
      if (!step.ok) return step;
      redriven += step.value.redriven;
      skipped.push(...step.value.skipped);
      afterSeq = step.value.lastSeq;
      if (!step.value.more) return ok({ redriven, skipped });
    }
  }

  // ---- agents ---------------------------------------------------------------------------------------------

  async registerAgent(principal: Principal, input: AgentInput): Promise<Outcome<AgentRecord & { heartbeatIntervalMs: number }>> {
    return this.change(true, (core, now) => ({
      ...core.registerAgent(principal, input, now),
      heartbeatIntervalMs: core.config().heartbeatIntervalMs,
    }));
  }

  async getAgent(principal: Principal, agentId: string): Promise<Outcome<AgentRecord>> {
    return this.read((core) => core.agents.get(principal, agentId));
  }

  async listAgents(principal: Principal): Promise<Outcome<AgentRecord[]>> {
    return this.read((core) => {
      core.requireTenant(principal);
      return core.agents.list(principal);
    });
  }

  async transitionAgent(principal: Principal, agentId: string, to: AgentState): Promise<Outcome<AgentRecord>> {
    return this.change(false, (core, now) => core.transitionAgent(principal, agentId, to, now));
  }

  /**
   * Closes the sockets opened with a credential of this API key (directly or through a token issued from it): a
   * revoked key stops at once on sockets too. Answers how many were closed.
   */
  async closeSocketsOfKey(keyId: string): Promise<number> {
    let closed = 0;
    for (const [ws, { principal }] of this.sockets()) {
      if (principal.allTenants || principal.actor !== keyId) continue;
      try {
        ws.close(CLOSE_CREDENTIAL_REVOKED, "the API key was revoked");
      } catch {
        // already closing
      }
      closed++;
    }
    if (closed > 0) this.socketCache = null;
    return closed;
  }

  async deleteAgent(principal: Principal, agentId: string): Promise<Outcome<null>> {
    const out = await this.change(false, (core, now) => {
      core.deleteAgent(principal, agentId, now);
      return null;
    });
    if (out.ok) {
      for (const ws of this.ctx.getWebSockets(agentId)) ws.close(CLOSE_AGENT_REMOVED, "the agent was deleted");
      this.socketCache = null;
    }
    return out;
  }

  async heartbeat(principal: Principal, agentId: string, load: AgentLoad | null): Promise<Outcome<AgentRecord & { heartbeatIntervalMs: number }>> {
    return this.change(false, (core, now) => ({
      ...core.heartbeat(principal, agentId, load, now),
      heartbeatIntervalMs: core.config().heartbeatIntervalMs,
    }));
  }

  /** Leases up to `max` tasks; with nothing to do, waits up to `waitMs` for work to arrive. */
  async lease(principal: Principal, agentId: string, max: number, waitMs: number): Promise<Outcome<LeasedTask[]>> {
    const attempt = (): Outcome<LeasedTask[]> => this.apply(false, (core, now) => core.lease(principal, agentId, max, now));
    const first = attempt();
    if (!first.ok || first.value.length > 0 || waitMs <= 0) {
      await this.afterCommit();
      return first;
    }
    const later = await this.leaseWaiters.wait(waitMs, () => {
      const next = attempt();
      return !next.ok || next.value.length > 0 ? next : null;
    });
    await this.afterCommit();
    return later ?? ok([]);
  }

  // ---- pool -----------------------------------------------------------------------------------------------

  async getConfig(principal: Principal): Promise<Outcome<PoolConfig>> {
    return this.read((core) => {
      core.requireTenant(principal);
      return core.config();
    });
  }

  async updateConfig(principal: Principal, patch: PoolConfigPatch): Promise<Outcome<PoolConfig>> {
    return this.change(true, (core, now) => core.updateConfig(principal, patch, now));
  }

  async stats(principal: Principal): Promise<Outcome<PoolStats>> {
    return this.read((core) => {
      core.requireTenant(principal);
      return core.poolStats(principal, this.clock());
    });
  }

  async counts(principal: Principal): Promise<Outcome<{ queue: StatusCounts; agents: Record<AgentState, number> }>> {
    return this.read((core) => ({ queue: core.statusCounts(principal), agents: core.agents.countsByState() }));
  }

  /** A tenant's credential sees its own task counts; counters and latency are per pool. */
  async metrics(principal: Principal): Promise<Outcome<PoolMetrics>> {
    return this.read((core) => {
      const all = core.metrics();
      return principal.allTenants ? all : { ...all, tasks: all.tasks.filter((t) => t.tenant === principal.tenant) };
    });
  }

  // ---- WebSocket push (hibernation API) ------------------------------------------------------------------

  /**
   * Accepts an agent's WebSocket. Only the Worker's connect route reaches this: it authenticated the caller,
   * checked the permission and passes who it is in `x-daa-principal`.
   */
  override async fetch(request: Request): Promise<Response> {
    const principal = JSON.parse(request.headers.get("x-daa-principal") ?? "null") as Principal | null;
    const agentId = request.headers.get("x-daa-agent");
    if (principal === null || agentId === null || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: { code: "invalid_request", message: "expected an agent WebSocket upgrade" } }, { status: 400 });
    }
    const opened = this.apply(false, (core, now) => {
      core.requireCertificate(principal);
      core.agents.get(principal, agentId);
      core.seen(agentId, null, now);
      // Credits belong to one connection: a new socket starts from none.
      core.agents.setCredits(agentId, 0);
      return core.config().heartbeatIntervalMs;
    });
    if (!opened.ok) return Response.json({ error: opened.error }, { status: ERROR_STATUS[opened.error.code] });
    for (const old of this.ctx.getWebSockets(agentId)) {
      try {
        old.close(4000, "replaced by a newer connection of this agent");
      } catch {
        // already closing
      }
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, [agentId]);
    server.serializeAttachment({
      agentId,
      principal,
      actor: request.headers.get("x-daa-actor") ?? principal.actor,
      ip: request.headers.get("cf-connecting-ip"),
    } satisfies SocketAttachment);
    this.socketCache = null;
    server.send(JSON.stringify({ type: "hello", agentId, heartbeatIntervalMs: opened.value }));
    await this.afterCommit();
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * One frame of an agent. Frames are applied in groups: those that arrive while one group commits wait for the
   * next, and every frame of a group (of any number of agents) is applied in one transaction, because what a
   * Durable Object pays per write is the commit, not the statement (group commit). Each frame is still answered in
   * one frame of its own, and a frame refused as a whole (no certificate) does not affect the others.
   */
  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const attachment = ws.deserializeAttachment() as SocketAttachment;
    if (expired(attachment.principal, this.clock())) {
      // A socket lives no longer than the credential that opened it.
      ws.close(CLOSE_CREDENTIAL_EXPIRED, "the credential expired; reconnect with a fresh token");
      return;
    }
    const parsed = parseFrame(raw);
    if (!parsed.ok) {
      ws.send(JSON.stringify({ type: "error", id: null, error: { code: "invalid_request", message: parsed.message, details: parsed.details } }));
      return;
    }
    this.inbox.push({ ws, attachment, messages: parsed.messages });
    this.draining ??= this.drainInbox();
    await this.draining;
  }

  private readonly inbox: PendingFrame[] = [];
  private draining: Promise<void> | null = null;

  private async drainInbox(): Promise<void> {
    try {
      // Let the frames already on their way join this group.
      await new Promise((resolve) => setTimeout(resolve, 0));
      while (this.inbox.length > 0) {
        const frames = this.inbox.splice(0);
        const sealed = await Promise.all(frames.map((f) => this.sealResults(settlementsOf(f.messages))));
        const applied = this.apply(false, (core, now) => frames.map((f, i) => applyFrame(core, f, sealed[i]!, now)));
        frames.forEach((f, i) => {
          if (!applied.ok) {
            f.ws.send(JSON.stringify({ type: "error", id: null, error: applied.error }));
            return;
          }
          const outcome = applied.value[i]!;
          if (!outcome.ok) {
            f.ws.send(JSON.stringify({ type: "error", id: null, error: outcome.error }));
            return;
          }
          const replies: object[] = outcome.results.map((r) =>
            "error" in r
              ? { type: "error", id: r.id, error: r.error }
              : { type: "ack", id: r.id, status: r.status, ...(r.leaseExpiresAt === undefined ? {} : { leaseExpiresAt: new Date(r.leaseExpiresAt).toISOString() }) },
          );
          if (outcome.state) replies.push({ type: "heartbeat", ...outcome.state });
          try {
            if (replies.length > 0) f.ws.send(frame(replies));
          } catch (err) {
            console.warn(`agent ${f.attachment.agentId}: could not answer a frame`, err);
          }
          if (sealed[i]!.length > 0) {
            const refused = outcome.results.filter((r) => "error" in r).length;
            this.auditLater(f.attachment, "task.settle", sealed[i]!.map((s) => s.id), refused === 0 ? "success" : `${refused} refused`);
            this.auditOthersLater(f.attachment, "task.settle", outcome.results);
          }
        });
        await this.afterCommit();
      }
    } finally {
      this.draining = null;
    }
  }

  /** A closed socket is not a failure: the agent's leases stay until its heartbeats are missed. */
  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.socketCache = null;
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    const { agentId } = ws.deserializeAttachment() as SocketAttachment;
    console.warn(`agent ${agentId}: WebSocket error`, error);
  }

  /**
   * The agents with an open WebSocket that may be pushed work: a socket whose credential expired is closed, and
   * one without a verified client certificate gets nothing in a pool that requires it.
   */
  private connectedAgents(core: PoolCore): Set<string> {
    const now = this.clock();
    const certRequired = core.config().requireClientCert;
    const agents = new Set<string>();
    for (const [ws, { agentId, principal }] of this.sockets()) {
      if (expired(principal, now)) {
        ws.close(CLOSE_CREDENTIAL_EXPIRED, "the credential expired; reconnect with a fresh token");
        this.socketCache = null;
        continue;
      }
      if (certRequired && !principal.certVerified) continue;
      agents.add(agentId);
    }
    return agents;
  }

  /**
   * The open sockets and what they remember, read from the runtime once and kept until a socket opens or
   * closes (after hibernation the object starts without it and reads it again).
   */
  private socketCache: Map<WebSocket, SocketAttachment> | null = null;

  private sockets(): Map<WebSocket, SocketAttachment> {
    this.socketCache ??= new Map(this.ctx.getWebSockets().map((ws) => [ws, ws.deserializeAttachment() as SocketAttachment]));
    return this.socketCache;
  }

  /** The same sockets by agent (the first of an agent's, as `getWebSockets(agentId)[0]`), rebuilt with the cache. */
  private socketIndex: { from: Map<WebSocket, SocketAttachment>; byAgent: Map<string, [WebSocket, SocketAttachment]> } | null = null;

  private socketOf(agentId: string): [WebSocket, SocketAttachment] | undefined {
    const all = this.sockets();
    if (this.socketIndex?.from !== all) {
      const byAgent = new Map<string, [WebSocket, SocketAttachment]>();
      for (const [ws, attachment] of all) if (!byAgent.has(attachment.agentId)) byAgent.set(attachment.agentId, [ws, attachment]);
      this.socketIndex = { from: all, byAgent };
    }
    return this.socketIndex.byAgent.get(agentId);
  }

  /**
   * Audit records of socket traffic gather for a moment and go to each tenant's log in one append. Within that
   * moment the frames of one socket that did the same thing with success are one record over all their tasks (a
   * refused frame keeps a record of its own): the log grows by a few records a second per agent, not one per frame.
   */
  private readonly auditQueue = new Map<string, PendingAudit[]>();
  private auditTimer: ReturnType<typeof setTimeout> | null = null;

  private auditLater(socket: SocketAttachment, action: string, ids: string[], outcome: string, chain = socket.principal.tenant): void {
    let queue = this.auditQueue.get(chain);
    if (!queue) this.auditQueue.set(chain, (queue = []));
    const sameSource = (p: PendingAudit) => p.socket.agentId === socket.agentId && p.socket.actor === socket.actor && p.socket.ip === socket.ip;
    const same = outcome === "success" ? queue.find((p) => p.outcome === "success" && p.action === action && sameSource(p)) : undefined;
    if (same) same.ids.push(...ids);
    else queue.push({ socket, action, outcome, ids: [...ids], at: Date.now() });
    this.auditTimer ??= setTimeout(() => this.ctx.waitUntil(this.flushAudit()), AUDIT_FLUSH_MS);
  }

  /**
   * A shared agent's batch may touch other tenants' tasks: each of those tenants gets a record naming only its own
   * (the actor's record names the whole batch). Refused items, which carry no tenant, changed nothing.
   */
  private auditOthersLater(socket: SocketAttachment, action: string, touched: readonly ({ id: string; tenant: string } | { id: string })[]): void {
    for (const [tenant, ids] of idsOfOtherTenants(touched, socket.principal.tenant)) this.auditLater(socket, action, ids, "success", tenant);
  }

  private async flushAudit(): Promise<void> {
    this.auditTimer = null;
    const batches = [...this.auditQueue.entries()];
    this.auditQueue.clear();
    await Promise.all(
      batches.map(async ([tenant, pending]) => {
        // The target names the batch as HTTP batches do: the count and a SHA-256 of the ids.
        const entries = await Promise.all(
          pending.map(async ({ socket, action, outcome, ids, at }): Promise<AuditEntry> => {
            const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(ids.join("\n"))));
            const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
            return { actor: socket.actor, action, target: `${socket.agentId} (websocket): ${ids.length} tasks sha256:${hex}`, outcome, ip: socket.ip, at };
          }),
        );
        await recordAuditBatch(this.env, tenant, entries);
      }),
    );
  }

  /**
   * Leases ready tasks to connected agents with credits (the pool's strategy choosing among them), inside the
   * transaction of the change that made them ready or freed the credits, so the change and its leases commit
   * together (one commit, one wait for durability, before the pushes leave). Runs only when the change can
   * have given work to someone.
   */
  private dispatchWithin(core: PoolCore, now: number): Map<string, LeasedTask[]> | null {
    const effects = core.tasks.effects;
    if (!(effects.ready || effects.released.size > 0 || effects.agentsChanged)) return null;
    const connected = this.connectedAgents(core);
    if (connected.size === 0) return null;
    const pushed = core.dispatch(connected, this.roundRobin, now);
    return pushed.size === 0 ? null : pushed;
  }

  /** Leases committed by {@link dispatchWithin}, to be sent once their transaction committed. */
  private outbox: Map<string, LeasedTask[]>[] = [];

  private pushing: Promise<void> | null = null;

  /**
   * Starts sending what the outbox holds, unless a sender runs: it goes on until the outbox is empty, so leases
   * are sent right after their commit, whatever the operation that committed them still waits for (a long poll).
   */
  private schedulePushes(): void {
    if (this.pushing) return;
    this.pushing = this.sendPushes().finally(() => {
      this.pushing = null;
      if (this.outbox.length > 0) this.schedulePushes();
    });
  }

  /** Sends each agent its committed leases in one frame. */
  private async sendPushes(): Promise<void> {
    while (this.outbox.length > 0) {
      for (const pushed of this.outbox.splice(0)) {
        for (const [agentId, tasks] of pushed) {
          try {
            const opened = await openTasks(this.env as Env & OptionalSecrets, tasks, this.plaintexts);
            for (const task of tasks) {
              this.plaintexts.take(task.payload);
              this.taskTenants.remember(task.id, task.tenant);
            }
            const socket = this.socketOf(agentId);
            if (socket) {
              socket[0].send(frame(opened.map((task) => ({ type: "task", task: presentLeased(task) }))));
              this.auditLater(socket[1], "task.lease", tasks.map((t) => t.id), "success");
              this.auditOthersLater(socket[1], "task.lease", tasks);
            }
          } catch (err) {
            // A socket gone meanwhile: the leases stay until the agent's heartbeats are missed, as for any close.
            console.warn(`agent ${agentId}: could not push ${tasks.length} task(s)`, err);
          }
        }
      }
    }
  }

  // ---- the alarm ------------------------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    this.armedAt = null;
    if (!this.core) return;
    for (let round = 0; round < ALARM_ROUNDS; round++) {
      const handled = this.apply(false, (core, now) => core.runTimers(now, ALARM_BATCH));
      if (!handled.ok || handled.value < ALARM_BATCH) break;
    }
    await this.afterCommit();
    // The alarm that ran is gone: arm the next from the timers themselves.
    await this.rearmAlarm();
  }

  // ---- the shell ------------------------------------------------------------------------------------------

  private get poolName(): { pool: string; shard: number } {
    const name = this.ctx.id.name;
    if (!name) throw new Error("PoolCoordinator must be reached by name (getByName)");
    return parseShardName(name);
  }

  private open(): PoolCore {
    const { pool, shard } = this.poolName;
    this.ctx.storage.transactionSync(() => PoolCore.initialize(this.ctx.storage.sql, this.clock()));
    this.core = new PoolCore(this.ctx.storage.sql, pool, shard);
    return this.core;
  }

  /** Runs `fn` as one transaction; `create` lets the first write bring the pool into existence. */
  private apply<T>(create: boolean, fn: (core: PoolCore, now: number) => T): Outcome<T> {
    let core = this.core;
    if (!core) {
      if (!create) return { ok: false, error: poolNotFound(this.poolName.pool).toBody() };
      core = this.open();
    }
    const now = this.clock();
    const target = core;
    try {
      let pushed: Map<string, LeasedTask[]> | null = null;
      const value = this.ctx.storage.transactionSync(() => {
        const value = fn(target, now);
        // Terminating agents that gave up their last lease leave in the same commit.
        if (target.tasks.effects.released.size > 0) target.agents.reapTerminating(target.tasks.effects.released);
        pushed = this.dispatchWithin(target, now);
        target.flush(now);
        return value;
      });
      // Only leases that committed are pushed.
      if (pushed) {
        this.outbox.push(pushed);
        this.schedulePushes();
      }
      return ok(value);
    } catch (err) {
      target.discardCaches();
      if (err instanceof ApiError) return { ok: false, error: err.toBody() };
      throw err;
    }
  }

  private async change<T>(create: boolean, fn: (core: PoolCore, now: number) => T): Promise<Outcome<T>> {
    const out = this.apply(create, fn);
    await this.afterCommit();
    return out;
  }

  private read<T>(fn: (core: PoolCore) => T): Outcome<T> {
    if (!this.core) return { ok: false, error: poolNotFound(this.poolName.pool).toBody() };
    const core = this.core;
    try {
      return ok(fn(core));
    } catch (err) {
      if (err instanceof ApiError) return { ok: false, error: err.toBody() };
      throw err;
    }
  }

  /**
   * After a commit: remove terminating agents that went idle, wake the callers the change concerns, move the
   * alarm earlier if a new timer needs it, and make sure the directory lists this pool.
   */
  private async afterCommit(): Promise<void> {
    const core = this.core;
    if (!core) return;
    const effects = core.tasks.takeEffects();
    this.resultSignals.signal(effects.finished);
    for (const id of effects.finished) this.taskTenants.forget(id);
    const wake = effects.ready || effects.released.size > 0 || effects.agentsChanged;
    if (wake && this.leaseWaiters.size > 0) this.leaseWaiters.poke();
    // The change says which timer it set earliest; the alarm moves only if that is sooner (no need to read the
    // timers back after every commit).
    await this.moveAlarm(effects.earliestTimer);
    for (const tenant of core.unlistedTenants()) await this.list(core, tenant);
    if (this.pushing) await this.pushing;
  }

  private async moveAlarm(at: number | null): Promise<void> {
    if (at !== null && needsRearm(this.armedAt, at)) {
      await this.ctx.storage.setAlarm(at);
      this.armedAt = at;
    }
  }

  /** Moves the alarm earlier when a timer needs it, reading the earliest of every timer. */
  private async rearmAlarm(): Promise<void> {
    const core = this.core;
    if (!core) return;
    const next = core.nextTimer(this.clock());
    if (needsRearm(this.armedAt, next)) {
      await this.ctx.storage.setAlarm(next!);
      this.armedAt = next;
    }
  }

  /** Records in the directory that a tenant uses this pool, for `GET /v1/pools`. */
  private async list(core: PoolCore, tenant: string): Promise<void> {
    try {
      await this.env.DIRECTORY.getByName("mesh").register(core.pool, tenant, this.clock());
      this.ctx.storage.transactionSync(() => core.markListed(tenant));
    } catch (err) {
      // The alarm retries (PoolCore.nextTimer keeps a timer while a tenant is unlisted).
      console.warn(`pool ${core.pool}: could not reach the directory`, err);
      core.unlisted = true;
      await this.moveAlarm(this.clock() + LISTING_RETRY_MS);
    }
  }

  /** Results are sealed with the key of their task's tenant (the agent's may differ: a shared fleet). */
  private async sealResults(items: Settlement[]): Promise<Settlement[]> {
    const keyring = keyringFromEnv(this.env as Env & OptionalSecrets);
    const core = this.core;
    const ids = items.filter((i) => i.action === "complete").map((i) => i.id);
    const tenants = core ? this.taskTenants.resolve(ids, (missing) => core.tasks.tenantsOf(missing)) : new Map<string, string>();
    return Promise.all(
      items.map(async (item) => {
        if (item.action !== "complete") return item;
        const tenant = tenants.get(item.id) ?? null;
        // An unknown task is refused inside the transaction; nothing of it is stored.
        if (tenant === null) return item;
        return { ...item, result: await encryptField(keyring, tenant, "result", item.result) };
      }),
    );
  }
}
