// HTTP transport: a long-poll loop on POST .../lease asking for as many tasks as there are free slots, outcomes
// batched through POST /v1/tasks/settle, heartbeats with POST .../heartbeat. For agents that cannot hold a socket,
// and the fallback when the WebSocket cannot be opened.
import { MeshError, type Load, type SettleItem } from "./api.ts";
import { Backoff } from "./backoff.ts";
import { Signal, sleep } from "./timers.ts";
import { heartbeatOverHttp, type AgentApi, type Settler, type Transport, type TransportContext } from "./transport.ts";

export interface HttpTransportOptions extends TransportContext {
  client: AgentApi;
  settler: Settler;
  /** How long one lease call may wait for work (the mesh allows up to 30000 ms; default 20000). */
  pollWaitMs?: number;
}

/** A lease call answered empty faster than this was not a long poll: the mesh has nothing for this agent now. */
const QUICK_EMPTY_MS = 500;

export class HttpTransport implements Transport {
  readonly name = "http";
  private readonly options: HttpTransportOptions;
  private readonly pollWaitMs: number;
  private readonly slotsFreed = new Signal();
  private readonly paused = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(options: HttpTransportOptions) {
    this.options = options;
    this.pollWaitMs = Math.min(30_000, Math.max(0, options.pollWaitMs ?? 20_000));
  }

  async start(): Promise<void> {
    this.loop = this.poll();
  }

  wake(): void {
    this.slotsFreed.notify();
  }

  send(item: SettleItem): void {
    this.options.settler.send(item);
  }

  async heartbeat(load: Load): Promise<void> {
    await heartbeatOverHttp(this.options, load);
  }

  pause(): void {
    // Aborting a pending lease call can drop tasks the mesh leased at that very moment; the agent's final DELETE
    // gives any such lease back at once, so nothing waits for an expiry.
    this.paused.abort();
    this.slotsFreed.notify();
  }

  async close(): Promise<void> {
    this.pause();
    await this.loop;
    await this.options.settler.drain(10_000);
  }

  private async poll(): Promise<void> {
    const { client, pool, agentId, host } = this.options;
    const signal = this.paused.signal;
    const errors = new Backoff({ baseMs: 250, maxMs: 15_000 });
    const idle = new Backoff({ baseMs: 250, maxMs: 5_000 });
    while (!signal.aborted) {
      const free = host.freeSlots();
      if (free <= 0) {
        await this.slotsFreed.wait();
        continue;
      }
      const startedAt = Date.now();
      try {
        const tasks = await client.lease(pool, agentId, Math.min(free, 100), this.pollWaitMs, signal);
        errors.reset();
        for (const task of tasks) host.onTask(task);
        // An agent that is paused, failed or has an open breaker is answered at once, empty: do not spin on it.
        if (tasks.length === 0 && Date.now() - startedAt < Math.min(QUICK_EMPTY_MS, this.pollWaitMs)) await sleep(idle.next(), signal);
        else idle.reset();
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof MeshError && err.status === 404) {
          host.onAgentGone(`lease answered 404: ${err.message}`);
          break;
        }
        const delay = err instanceof MeshError && err.retryAfterMs !== null ? err.retryAfterMs : errors.next();
        host.log(`lease failed (${err instanceof MeshError ? `${err.code}: ` : ""}${err instanceof Error ? err.message : String(err)}); retrying in ${delay} ms`);
        await sleep(delay, signal);
      }
    }
  }
}
