// The agent: registers, takes tasks from a transport, runs each through the executor under a time limit while
// keeping its lease extended, reports the outcome, heartbeats its measured load, and drains before leaving.
import { performance } from "node:perf_hooks";
import { MeshClient, MeshError, type SettleItem, type SettleResult } from "./api.ts";
import type { TaskError } from "./errors.ts";
import { InProcessExecutor, type Executor, type RunResult } from "./executor.ts";
import { describeTypes } from "./handlers.ts";
import { LoadMeter } from "./load.ts";
import { resolveOptions, type ResolvedOptions } from "./options.ts";
import { outcomeOf } from "./outcome.ts";
import { payloadOf } from "./payloads.ts";
import { HttpSettler } from "./settler-http.ts";
import { Signal } from "./timers.ts";
import { HttpTransport } from "./transport-http.ts";
import { WsTransport, type SocketFactory } from "./transport-ws.ts";
import type { Transport, TransportHost } from "./transport.ts";
import type { Agent, AgentOptions, AgentPhase, AgentStats } from "./types.ts";
import type { LeasedTask } from "./wire.ts";
import { WorkerPool } from "./worker-pool.ts";

const DEFAULT_HEARTBEAT_MS = 5_000;

/** Knobs for tests and embedding; not part of the documented options. */
export interface AgentInternals {
  socketFactory?: SocketFactory;
  pollWaitMs?: number;
}

interface RunningTask {
  task: LeasedTask;
  controller: AbortController;
  /** Local clock (ms since epoch) when the lease runs out, as far as the agent knows. */
  leaseExpiresAt: number;
  /** When the extension in flight was sent: its new expiry counts from here (the mesh's "now" is later). */
  extendSentAt: number;
  /** The outcome is decided (reported, timed out or lease lost): a late result of the handler is ignored. */
  decided: boolean;
  timeoutTimer: ReturnType<typeof setTimeout> | null;
  extendTimer: ReturnType<typeof setTimeout> | null;
}

export class MeshAgent implements Agent, TransportHost {
  readonly agentId: string;
  readonly closed: Promise<void>;
  private readonly resolveClosed: () => void;
  private readonly options: ResolvedOptions;
  private readonly pool: string;
  private readonly client: MeshClient;
  private readonly executor: Executor;
  private readonly settler: HttpSettler;
  private readonly load: LoadMeter;
  private readonly internals: AgentInternals;
  readonly log: (line: string) => void;

  private transport: Transport | null = null;
  private phase: AgentPhase = "created";
  private heartbeatIntervalMs = DEFAULT_HEARTBEAT_MS;
  private heartbeatTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatsOff = false;
  /** Keyed by lease token: the same task leased again (after an expiry) is another run. */
  private readonly running = new Map<string, RunningTask>();
  private readonly idle = new Signal();
  private stopping: Promise<void> | null = null;
  private starting: Promise<void> | null = null;
  private readonly counters = { completed: 0, failed: 0, timedOut: 0, leaseLost: 0 };

  constructor(options: AgentOptions, internals: AgentInternals = {}) {
    const o = resolveOptions(options);
    this.options = o;
    this.agentId = o.agentId;
    this.pool = o.pool;
    this.log = o.log;
    this.internals = internals;
    this.client = new MeshClient({ url: o.url, token: o.token });
    this.settler = new HttpSettler(this.client, this);
    this.load = new LoadMeter({ memoryBudgetBytes: o.memoryBudgetBytes });
    this.executor =
      o.handlers instanceof URL
        ? new WorkerPool({ moduleUrl: o.handlers, size: o.maxConcurrency, memoryLimitMb: o.memoryLimitMb, log: o.log })
        : new InProcessExecutor(o.handlers);
    let resolveClosed: () => void = () => {};
    this.closed = new Promise<void>((resolve) => (resolveClosed = resolve));
    this.resolveClosed = resolveClosed;
  }

  // ---- lifecycle ----------------------------------------------------------------------------------------------

  start(): Promise<void> {
    if (this.phase !== "created") return Promise.reject(new Error(`start() was already called (the agent is ${this.phase})`));
    this.phase = "starting";
    this.starting = this.boot();
    return this.starting;
  }

  private async boot(): Promise<void> {
    let registered = false;
    try {
      // Handlers first: a module that does not load should fail start() before the agent appears in the pool.
      await this.executor.init();
      const info = await this.client.registerAgent(this.pool, {
        agentId: this.agentId,
        capabilities: this.options.capabilities,
        resources: this.options.resources,
        maxConcurrency: this.options.maxConcurrency,
        metadata: this.options.metadata,
      });
      registered = true;
      this.heartbeatIntervalMs = info.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
      this.transport = await this.openTransport();
      this.phase = "running";
      this.scheduleHeartbeat();
      this.transport.wake();
      this.log(
        `agent ${this.agentId} registered in pool ${this.pool} over ${this.transport.name}: concurrency ${this.options.maxConcurrency}, ` +
          `handles ${describeTypes(this.executor.types())}, heartbeat every ${this.heartbeatIntervalMs} ms`,
      );
    } catch (err) {
      this.phase = "stopped";
      await this.executor.close();
      if (registered) await this.client.deleteAgent(this.pool, this.agentId).catch(() => {});
      this.resolveClosed();
      throw err;
    }
  }

  private async openTransport(): Promise<Transport> {
    const context = { pool: this.pool, agentId: this.agentId, host: this as TransportHost };
    if (this.options.transport !== "http") {
      const ws = new WsTransport({ ...context, client: this.client, token: this.options.token, settler: this.settler, socketFactory: this.internals.socketFactory });
      try {
        await ws.start();
        return ws;
      } catch (err) {
        // A socket that never said hello leaves nothing behind (no reconnect timer, nothing sent), and close()
        // would drain the settler both transports share.
        const reason = err instanceof Error ? err.message : String(err);
        if (this.options.transport === "websocket") throw new Error(`${reason} (transport "websocket" was required)`);
        this.log(`${reason}; using HTTP long polling instead`);
      }
    }
    const http = new HttpTransport({ ...context, client: this.client, settler: this.settler, pollWaitMs: this.internals.pollWaitMs });
    await http.start();
    return http;
  }

  stop(): Promise<void> {
    this.stopping ??= this.drainAndLeave();
    return this.stopping;
  }

  private async drainAndLeave(): Promise<void> {
    if (this.phase === "created") {
      this.phase = "stopped";
      this.resolveClosed();
      return;
    }
    await this.starting?.catch(() => {});
    if (this.phase === "stopped") return;
    this.phase = "stopping";
    const transport = this.transport;
    transport?.pause();
    this.log(`stopping: no new tasks; waiting for ${this.running.size} in flight`);
    // terminating: the mesh sends nothing more, and removes the agent by itself once nothing is in flight.
    await this.ignoreGone(this.client.setAgentState(this.pool, this.agentId, "terminating"), "set the agent to terminating");
    while (this.running.size > 0) await this.idle.wait();
    await transport?.close();
    this.stopHeartbeats();
    await this.ignoreGone(this.client.deleteAgent(this.pool, this.agentId), "deregister");
    await this.executor.close();
    this.phase = "stopped";
    this.log(`agent ${this.agentId} stopped (${this.counters.completed} completed, ${this.counters.failed} failed)`);
    this.resolveClosed();
  }

  /** 404 and invalid_transition mean the mesh already let the agent go; anything else is worth a line. */
  private async ignoreGone(call: Promise<unknown>, what: string): Promise<void> {
    try {
      await call;
    } catch (err) {
      if (err instanceof MeshError && (err.status === 404 || err.code === "invalid_transition")) return;
      this.log(`could not ${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  stats(): AgentStats {
    const load = this.load.latest;
    return {
      agentId: this.agentId,
      pool: this.pool,
      phase: this.phase,
      transport: this.transport?.name ?? null,
      maxConcurrency: this.options.maxConcurrency,
      inFlight: this.running.size,
      ...this.counters,
      heartbeatIntervalMs: this.heartbeatIntervalMs,
      load: { ...load, queueDepth: this.running.size },
    };
  }

  // ---- heartbeats ---------------------------------------------------------------------------------------------

  private scheduleHeartbeat(): void {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(() => void this.beat(), this.heartbeatIntervalMs);
  }

  private stopHeartbeats(): void {
    this.heartbeatsOff = true;
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private async beat(): Promise<void> {
    this.heartbeatTimer = null;
    const { currentLoad, queueDepth, avgLatencyMs } = this.load.sample(this.running.size);
    try {
      await this.transport?.heartbeat({ currentLoad, queueDepth, avgLatencyMs });
    } catch (err) {
      this.log(`heartbeat failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    // Beat on while draining too: missed heartbeats would fail the agent and give its leases away. onAgentInfo may
    // have scheduled the next beat already (a new interval); stopHeartbeats() ends them.
    if ((this.phase === "running" || this.phase === "stopping") && this.heartbeatTimer === null && !this.heartbeatsOff) this.scheduleHeartbeat();
  }

  // ---- TransportHost ------------------------------------------------------------------------------------------

  freeSlots(): number {
    return this.phase === "running" ? this.options.maxConcurrency - this.running.size : 0;
  }

  onAgentInfo({ heartbeatIntervalMs, state }: { heartbeatIntervalMs?: number; state?: string }): void {
    if (heartbeatIntervalMs !== undefined && heartbeatIntervalMs !== this.heartbeatIntervalMs) {
      this.log(`heartbeat interval is now ${heartbeatIntervalMs} ms`);
      const shorter = heartbeatIntervalMs < this.heartbeatIntervalMs;
      this.heartbeatIntervalMs = heartbeatIntervalMs;
      if (shorter && this.heartbeatTimer !== null) this.scheduleHeartbeat();
    }
    if (state === "terminating" && this.phase === "running") {
      this.log("the mesh set this agent to terminating; stopping");
      void this.stop();
    }
  }

  onAgentGone(reason: string): void {
    if (this.phase !== "running") return;
    this.log(`the mesh no longer knows this agent (${reason}); stopping`);
    void this.stop();
  }

  onTask(task: LeasedTask): void {
    const previous = this.running.get(task.leaseToken);
    if (previous) return; // the same lease delivered twice: it is running already
    if (!this.executor.types().has(task.type)) {
      const error = { message: `no handler for task type "${task.type}" on agent ${this.agentId} (it handles ${describeTypes(this.executor.types())})`, code: "no_handler" };
      this.send({ action: "fail", id: task.id, leaseToken: task.leaseToken, error, retryable: false });
      this.transport?.wake();
      return;
    }
    const receivedAt = Date.now();
    const leaseEnds = Date.parse(task.leaseExpiresAt);
    const rt: RunningTask = {
      task,
      controller: new AbortController(),
      // The earlier of the two, so that a clock ahead of the mesh's cannot make the agent extend too late.
      leaseExpiresAt: Math.min(receivedAt + task.timeoutMs, Number.isFinite(leaseEnds) ? leaseEnds : Infinity),
      extendSentAt: 0,
      decided: false,
      timeoutTimer: null,
      extendTimer: null,
    };
    this.running.set(task.leaseToken, rt);
    const limitMs = this.options.taskTimeoutMs ?? task.timeoutMs;
    rt.timeoutTimer = setTimeout(() => this.timeOut(rt, limitMs), limitMs);
    this.scheduleExtension(rt);
    // A payload the mesh left out (too large for a frame) is fetched first, within the lease (payloads.ts).
    void payloadOf(this.client, task, rt.controller.signal)
      .then(async (got) => {
        if (!got.ok) return this.payloadMissing(rt, got);
        const startedAt = performance.now();
        const result = await this.executor.run({ taskId: task.id, type: task.type, attempt: task.attempt, payload: got.payload, signal: rt.controller.signal });
        this.finish(rt, result, performance.now() - startedAt);
      })
      // finish() does not throw by design; should it, the agent must log and carry on, not die of an unhandled rejection.
      .catch((err: unknown) => this.log(`internal error finishing task ${task.id}: ${err instanceof Error ? err.message : String(err)}`));
  }

  onSettled(item: SettleItem, result: SettleResult): void {
    const rt = this.running.get(item.leaseToken);
    if (item.action === "extend") {
      if (!rt || rt.decided) return;
      if (result.ok) {
        const answered = result.leaseExpiresAt ? Date.parse(result.leaseExpiresAt) : Infinity;
        rt.leaseExpiresAt = Math.min(rt.extendSentAt + item.extendMs, Number.isFinite(answered) ? answered : Infinity);
        this.scheduleExtension(rt);
      } else if (result.code === "lease_lost" || result.code === "not_found") {
        // Expired, cancelled or given to another agent: the work can no longer be reported, so stop doing it.
        this.counters.leaseLost++;
        this.decide(rt);
        rt.controller.abort(Object.assign(new Error(`the lease of task ${item.id} was lost (${result.message})`), { name: "LeaseLostError" }));
        this.log(`task ${item.id}: lease lost (${result.message}); its handler was aborted`);
      } else {
        this.log(`extending task ${item.id} failed (${result.code}: ${result.message}); trying again`);
        this.scheduleExtension(rt);
      }
      return;
    }
    if (result.ok) {
      if (item.action === "complete") this.counters.completed++;
      else this.counters.failed++;
    } else if (result.code === "lease_lost") {
      this.counters.leaseLost++;
      this.log(`${item.action} of task ${item.id} refused: lease_lost (it is no longer this agent's: ${result.message})`);
    } else {
      this.log(`${item.action} of task ${item.id} refused: ${result.code}: ${result.message}`);
    }
  }

  // ---- one task -----------------------------------------------------------------------------------------------

  private send(item: SettleItem): void {
    if (this.transport) this.transport.send(item);
    else this.settler.send(item);
  }

  /** Extends at half of the remaining lease, so that one lost or slow extension still leaves time for another. */
  private scheduleExtension(rt: RunningTask): void {
    if (rt.extendTimer) clearTimeout(rt.extendTimer);
    const delay = Math.max(250, (rt.leaseExpiresAt - Date.now()) / 2);
    rt.extendTimer = setTimeout(() => {
      rt.extendTimer = null;
      if (rt.decided) return;
      rt.extendSentAt = Date.now();
      const extendMs = Math.min(3_600_000, Math.max(1_000, rt.task.timeoutMs));
      this.send({ action: "extend", id: rt.task.id, leaseToken: rt.task.leaseToken, extendMs });
      // Should the answer never come (a socket lost with it), try again at half of what is left; the answer
      // reschedules from the new expiry.
      this.scheduleExtension(rt);
    }, delay);
  }

  private timeOut(rt: RunningTask, limitMs: number): void {
    if (rt.decided) return;
    this.decide(rt);
    this.counters.timedOut++;
    const error: TaskError = { message: `the task timed out after ${limitMs} ms; its handler was aborted`, code: "timeout" };
    this.send({ action: "fail", id: rt.task.id, leaseToken: rt.task.leaseToken, error, retryable: true });
    rt.controller.abort(Object.assign(new Error(error.message), { name: "TimeoutError" }));
  }

  /** No more outcome or extension for this run. */
  private decide(rt: RunningTask): void {
    rt.decided = true;
    if (rt.timeoutTimer) clearTimeout(rt.timeoutTimer);
    if (rt.extendTimer) clearTimeout(rt.extendTimer);
    rt.timeoutTimer = null;
    rt.extendTimer = null;
  }

  /** A payload that could not be fetched: a lost lease ends the run quietly, anything else fails the attempt. */
  private payloadMissing(rt: RunningTask, got: { lost: boolean; message: string }): void {
    this.log(`task ${rt.task.id}: ${got.message}`);
    if (got.lost && !rt.decided) {
      this.decide(rt);
      this.counters.leaseLost++;
    }
    this.finish(rt, { ok: false, error: { message: got.message, code: "payload_unavailable" }, retryable: true }, null);
  }

  private finish(rt: RunningTask, result: RunResult, durationMs: number | null): void {
    const { task } = rt;
    if (!rt.decided) {
      this.decide(rt);
      if (durationMs !== null) this.load.recordLatency(durationMs);
      this.send(outcomeOf(task, result));
    }
    this.running.delete(task.leaseToken);
    // The slot is free only now: an aborted handler's worker may have needed its grace period to stop.
    this.transport?.wake();
    if (this.running.size === 0) this.idle.notify();
  }
}
