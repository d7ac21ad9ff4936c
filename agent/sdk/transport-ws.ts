// WebSocket transport (API.md, "WebSocket messages"): the mesh pushes leased tasks, never more than the credits
// the agent gave with `ready`; outcomes, extensions, credits and heartbeats travel in `batch` messages collected for
// a few milliseconds, which the mesh applies in one transaction. A closed socket is not a failure: leases survive
// until heartbeats are missed, so the transport reconnects with backoff, sends what was unanswered over HTTP, and
// gives its free slots as credits again on the new socket.
import type { Load, SettleItem, SettleResult } from "./api.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { Batcher } from "./batcher.ts";
import { sleep } from "./timers.ts";
import { heartbeatOverHttp, type AgentApi, type Settler, type Transport, type TransportContext } from "./transport.ts";
import { agentFrame, agentMessage, type AgentMessageInput } from "../../contract/wire/agent.ts";
import { BatchEnvelope, MeshMessage } from "../../contract/wire/mesh.ts";
import { nodeSocket, type SocketEvents, type SocketFactory, type SocketLike } from "./socket.ts";

export { nodeSocket, type SocketEvents, type SocketFactory, type SocketLike };

/** Messages from the agent to the mesh (contract/wire/agent.ts). */
export type AgentMessage = AgentMessageInput;

export interface WsTransportOptions extends TransportContext {
  client: AgentApi;
  token: string;
  settler: Settler;
  socketFactory?: SocketFactory;
  backoff?: BackoffOptions;
  /** A connection that lasted this long resets the backoff (default 10 s). */
  stableMs?: number;
  /** Time from dialling to the mesh's `hello` (default 10 s). */
  helloTimeoutMs?: number;
  /** Outbound batching: most messages per frame (default 64) and longest wait (default 3 ms). */
  batchMaxItems?: number;
  batchMaxDelayMs?: number;
}

/** Cloudflare accepts frames up to 1 MiB; stay under it. */
const MAX_FRAME_BYTES = 1_000_000;

export function connectUrl(baseUrl: string, pool: string, agentId: string, token: string): string {
  const url = new URL(`${baseUrl.replace(/\/+$/, "")}/v1/pools/${encodeURIComponent(pool)}/agents/${encodeURIComponent(agentId)}/connect`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // Node's WebSocket cannot set an Authorization header; the mesh takes the credential from ?token= on upgrades.
  url.searchParams.set("token", token);
  return url.toString();
}

interface Connection {
  socket: SocketLike;
  /** The mesh said hello: the socket is usable. */
  live: boolean;
  connectedAt: number;
  helloTimer: ReturnType<typeof setTimeout> | null;
}

export class WsTransport implements Transport {
  readonly name = "websocket";
  private readonly options: WsTransportOptions;
  private readonly factory: SocketFactory;
  private readonly backoff: Backoff;
  private readonly outbound: Batcher<AgentMessage>;
  private conn: Connection | null = null;
  /** Credits given on the current socket and not yet used by a pushed task. */
  private credits = 0;
  /** Sent on the current socket and not yet answered, per task id in sending order (the mesh answers in order). */
  private readonly unanswered = new Map<string, SettleItem[]>();
  private paused = false;
  private closed = false;
  private firstConnect: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: WsTransportOptions) {
    this.options = options;
    this.factory = options.socketFactory ?? nodeSocket;
    this.backoff = new Backoff({ baseMs: 250, maxMs: 15_000, ...options.backoff });
    this.outbound = new Batcher<AgentMessage>({
      maxItems: options.batchMaxItems ?? 64,
      maxDelayMs: options.batchMaxDelayMs ?? 3,
      maxBytes: MAX_FRAME_BYTES,
      sizeOf: (msg) => Buffer.byteLength(JSON.stringify(msg)),
      send: (messages) => this.write(messages),
    });
  }

  get connected(): boolean {
    return this.conn?.live === true;
  }

  /** Resolves on the first `hello`; rejects if the first socket closes (or times out) before it. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      this.connect();
    });
  }

  wake(): void {
    this.grant();
  }

  send(item: SettleItem): void {
    if (!this.conn?.live) {
      this.options.settler.send(item);
      return;
    }
    const queue = this.unanswered.get(item.id);
    if (queue) queue.push(item);
    else this.unanswered.set(item.id, [item]);
    this.outbound.add(toMessage(item));
  }

  async heartbeat(load: Load): Promise<void> {
    // Over the socket the mesh answers with the agent's state and interval (a `heartbeat` message).
    if (this.conn?.live) {
      this.outbound.add(agentMessage.heartbeat(load));
      return;
    }
    // Between sockets heartbeats go over HTTP too: missing them would fail the agent and give its leases away.
    await heartbeatOverHttp(this.options, load);
  }

  pause(): void {
    this.paused = true;
  }

  async close(): Promise<void> {
    this.paused = true;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.outbound.flush();
    // Give the mesh a moment to answer what is in flight on the socket before letting go of it.
    const deadline = Date.now() + 5_000;
    while (this.conn?.live && this.unanswered.size > 0 && Date.now() < deadline) await sleep(10);
    const conn = this.conn;
    if (conn) this.drop(conn, 1000, "agent stopping");
    await this.options.settler.drain(10_000);
  }

  // ---- connection ---------------------------------------------------------------------------------------------

  private connect(): void {
    this.reconnectTimer = null;
    const { client, pool, agentId, token } = this.options;
    const url = connectUrl(client.baseUrl, pool, agentId, token);
    let conn: Connection | null = null;
    // Events of a socket that was replaced are ignored: each handler checks it still owns `this.conn`.
    const events: SocketEvents = {
      onOpen: () => {},
      onMessage: (text) => {
        if (conn && this.conn === conn) this.receive(conn, text);
      },
      onClose: (code, reason) => {
        if (conn && this.conn === conn) this.lost(conn, `closed (${code}${reason ? ` ${reason}` : ""})`);
      },
      onError: (message) => {
        if (conn && this.conn === conn) this.options.host.log(`WebSocket error: ${message}`);
      },
    };
    let socket: SocketLike;
    try {
      socket = this.factory(url, events);
    } catch (err) {
      this.failedDial(err instanceof Error ? err.message : String(err));
      return;
    }
    conn = { socket, live: false, connectedAt: 0, helloTimer: null };
    this.conn = conn;
    const timeoutMs = this.options.helloTimeoutMs ?? 10_000;
    conn.helloTimer = setTimeout(() => {
      if (conn && this.conn === conn && !conn.live) this.drop(conn, 4000, `no hello within ${timeoutMs} ms`);
    }, timeoutMs);
  }

  private failedDial(reason: string): void {
    if (this.firstConnect) {
      this.firstConnect.reject(new Error(`cannot open the WebSocket: ${reason}`));
      this.firstConnect = null;
      return;
    }
    this.scheduleReconnect(reason);
  }

  /** Closes `conn` on purpose and handles it as lost. */
  private drop(conn: Connection, code: number, reason: string): void {
    try {
      conn.socket.close(code, reason);
    } catch {
      // already closing
    }
    if (this.conn === conn) this.lost(conn, reason);
  }

  private lost(conn: Connection, reason: string): void {
    const wasLive = conn.live;
    if (conn.helloTimer) clearTimeout(conn.helloTimer);
    conn.live = false;
    this.conn = null;
    this.credits = 0;
    // What waited in the batcher or on the socket unanswered goes over HTTP now; credits and heartbeats of a dead
    // socket mean nothing.
    this.outbound.flush();
    const orphans = [...this.unanswered.values()].flat();
    this.unanswered.clear();
    for (const item of orphans) this.options.settler.send(item);
    if (!wasLive && this.firstConnect) {
      this.failedDial(reason);
      return;
    }
    if (this.closed) return;
    if (wasLive && Date.now() - conn.connectedAt >= (this.options.stableMs ?? 10_000)) this.backoff.reset();
    this.scheduleReconnect(reason);
  }

  private scheduleReconnect(reason: string): void {
    if (this.closed) return;
    const delay = this.backoff.next();
    this.options.host.log(`WebSocket ${reason}; reconnecting in ${delay} ms`);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  // ---- messages -----------------------------------------------------------------------------------------------

  private write(messages: AgentMessage[]): void {
    const conn = this.conn;
    // A socket that went away between queueing and flushing: its outcomes were rerouted by lost().
    if (!conn?.live) return;
    try {
      conn.socket.send(agentFrame(messages));
    } catch (err) {
      this.drop(conn, 4001, `send failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private receive(conn: Connection, text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.options.host.log(`ignored a WebSocket frame that is not JSON: ${text.slice(0, 100)}`);
      return;
    }
    this.handle(conn, parsed);
  }

  private handle(conn: Connection, value: unknown): void {
    const batch = BatchEnvelope.safeParse(value);
    if (batch.success) {
      for (const message of batch.data.messages) this.handle(conn, message);
      return;
    }
    const parsed = MeshMessage.safeParse(value);
    if (!parsed.success) {
      // The contract lets the mesh add message types; an agent that does not know one carries on.
      this.options.host.log(`ignored an unknown WebSocket message: ${JSON.stringify(value).slice(0, 200)}`);
      return;
    }
    const msg = parsed.data;
    const { host } = this.options;
    switch (msg.type) {
      case "hello": {
        if (conn.helloTimer) clearTimeout(conn.helloTimer);
        conn.helloTimer = null;
        conn.live = true;
        conn.connectedAt = Date.now();
        this.credits = 0;
        host.onAgentInfo({ heartbeatIntervalMs: msg.heartbeatIntervalMs });
        if (this.firstConnect) {
          this.firstConnect.resolve();
          this.firstConnect = null;
        } else {
          host.log("WebSocket reconnected");
        }
        this.grant();
        return;
      }
      case "task": {
        if (this.credits <= 0) host.log(`the mesh pushed task ${msg.task.id} without a credit; running it anyway`);
        this.credits = Math.max(0, this.credits - 1);
        host.onTask(msg.task);
        return;
      }
      case "ack":
        this.answer(msg.id, { id: msg.id, ok: true, status: msg.status, leaseExpiresAt: msg.leaseExpiresAt ?? null });
        return;
      case "error":
        if (msg.id) this.answer(msg.id, { id: msg.id, ok: false, code: msg.error.code, message: msg.error.message });
        else this.frameRefused(`${msg.error.code}: ${msg.error.message}`);
        return;
      case "heartbeat":
        host.onAgentInfo({ heartbeatIntervalMs: msg.heartbeatIntervalMs, state: msg.state });
        return;
    }
  }

  /**
   * An error without an id refuses a whole frame (not parsed, or not applied), and does not say which one: what is
   * unanswered goes again over HTTP, whose answers are per item. Lease tokens make that safe: an outcome applied
   * already is answered lease_lost, never applied twice.
   */
  private frameRefused(reason: string): void {
    const pending = [...this.unanswered.values()].flat();
    this.unanswered.clear();
    this.options.host.log(`the mesh refused a frame (${reason})${pending.length > 0 ? `; sending ${pending.length} unanswered outcome(s) over HTTP` : ""}`);
    for (const item of pending) this.options.settler.send(item);
  }

  /** The mesh answers each outcome of a task in the order they were sent. */
  private answer(id: string, result: SettleResult): void {
    const queue = this.unanswered.get(id);
    const item = queue?.shift();
    if (queue && queue.length === 0) this.unanswered.delete(id);
    if (item) this.options.host.onSettled(item, result);
    else if (!result.ok) this.options.host.log(`the mesh reported an error for ${id}: ${result.code}: ${result.message}`);
  }

  /** Tops the mesh's credits up to the agent's free slots. */
  private grant(): void {
    if (this.paused || !this.conn?.live) return;
    const want = this.options.host.freeSlots() - this.credits;
    if (want <= 0) return;
    this.credits += want;
    this.outbound.add(agentMessage.ready(want));
  }
}

function toMessage(item: SettleItem): AgentMessage {
  switch (item.action) {
    case "complete":
      return agentMessage.complete(item.id, item.leaseToken, item.result);
    case "fail":
      return agentMessage.fail(item.id, item.leaseToken, item.error, item.retryable);
    case "extend":
      return agentMessage.extend(item.id, item.leaseToken, item.extendMs);
  }
}
