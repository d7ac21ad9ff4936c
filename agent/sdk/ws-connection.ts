// One WebSocket to one shard of the pool, kept open across drops: it dials, waits for the mesh's `hello`, batches
// what it sends, matches acks and errors to what it sent, counts the credits it gave, and redials with backoff when
// the socket goes. What the socket carried unanswered goes over HTTP when it is lost (lease tokens make a resend
// safe: an outcome applied already is answered lease_lost, never applied twice). Which shards to connect to, where
// credits go and whether to redial after a loss are the transport's decisions (transport-ws.ts), asked through
// ConnectionEvents.
import type { Load, SettleItem, SettleResult } from "./api.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { Batcher } from "./batcher.ts";
import type { SocketEvents, SocketFactory, SocketLike } from "./socket.ts";
import type { LeasedTask } from "./wire.ts";
import { agentFrame, agentMessage, type AgentMessageInput } from "../../contract/wire/agent.ts";
import { BatchEnvelope, MeshMessage } from "../../contract/wire/mesh.ts";

export type HelloMessage = Extract<MeshMessage, { type: "hello" }>;
export type HeartbeatAnswer = Extract<MeshMessage, { type: "heartbeat" }>;

/** Cloudflare accepts frames up to 1 MiB; stay under it. */
const MAX_FRAME_BYTES = 1_000_000;

/** The socket URL of an agent: its home shard, or with `shard` that shard of the pool. */
export function connectUrl(baseUrl: string, pool: string, agentId: string, token: string, shard?: string): string {
  const url = new URL(`${baseUrl.replace(/\/+$/, "")}/v1/pools/${encodeURIComponent(pool)}/agents/${encodeURIComponent(agentId)}/connect`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // Node's WebSocket cannot set an Authorization header; the mesh takes the credential from ?token= on upgrades.
  url.searchParams.set("token", token);
  if (shard !== undefined) url.searchParams.set("shard", shard);
  return url.toString();
}

export interface Loss {
  /** The close code, or null when the socket was dropped by the agent or could not be dialled. */
  code: number | null;
  reason: string;
  /** The mesh had said hello on the lost socket. */
  wasLive: boolean;
}

/** What a connection tells the transport, and asks it. */
export interface ConnectionEvents {
  hello(conn: ShardConnection, msg: HelloMessage): void;
  task(conn: ShardConnection, task: LeasedTask): void;
  heartbeatAnswer(conn: ShardConnection, msg: HeartbeatAnswer): void;
  /** The mesh's answer to an outcome or extension sent on the socket. */
  settled(item: SettleItem, result: SettleResult): void;
  /** An outcome the socket can no longer carry: it goes over HTTP. */
  reroute(item: SettleItem): void;
  /** The socket is gone (its credits and unanswered outcomes are handled already): redial with backoff? */
  lost(conn: ShardConnection, loss: Loss): boolean;
  /** Asked before each redial: is this connection still wanted? */
  wanted(conn: ShardConnection): boolean;
  log(line: string): void;
}

export interface ConnectionOptions {
  url: string;
  /** The shard dialled with `&shard=`; null for the agent's home shard (whichever it is). */
  target: string | null;
  /** How log lines name it: "WebSocket" for the home socket, "WebSocket to shard 1" for another. */
  label: string;
  factory: SocketFactory;
  events: ConnectionEvents;
  backoff?: BackoffOptions;
  stableMs?: number;
  helloTimeoutMs?: number;
  batchMaxItems?: number;
  batchMaxDelayMs?: number;
}

export class ShardConnection {
  readonly target: string | null;
  readonly label: string;
  /** The shard the mesh said this socket reaches (hello's `shard`); undefined before it, or from an older mesh. */
  shardId: string | undefined;
  /** What the latest shard list says of this shard; a shard not (yet) listed counts as active. */
  serving: "active" | "draining" = "active";
  /** Credits given on the current socket and not yet used by a pushed task. */
  credits = 0;
  /** Slots of finished tasks this socket delivered, and tasks pushed on it, since the last credit round (ws-credits.ts). */
  owed = 0;
  pushed = 0;
  private readonly options: ConnectionOptions;
  private readonly events: ConnectionEvents;
  private readonly backoff: Backoff;
  private readonly outbound: Batcher<AgentMessageInput>;
  private socket: SocketLike | null = null;
  private live = false;
  private everLive = false;
  private connectedAt = 0;
  private helloTimer: ReturnType<typeof setTimeout> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  /** Sizes of outcome messages measured when they were queued (the batcher asks again). */
  private readonly sizes = new WeakMap<AgentMessageInput, number>();
  /** Sent on the current socket and not yet answered, per task id in sending order (the mesh answers in order). */
  private readonly unanswered = new Map<string, SettleItem[]>();

  constructor(options: ConnectionOptions) {
    this.options = options;
    this.target = options.target;
    this.label = options.label;
    this.events = options.events;
    this.backoff = new Backoff({ baseMs: 250, maxMs: 15_000, ...options.backoff });
    this.outbound = new Batcher<AgentMessageInput>({
      maxItems: options.batchMaxItems ?? 64,
      maxDelayMs: options.batchMaxDelayMs ?? 3,
      maxBytes: MAX_FRAME_BYTES,
      sizeOf: (msg) => this.sizes.get(msg) ?? frameBytes(msg),
      send: (messages) => this.write(messages),
    });
  }

  /** The mesh said hello on the current socket: it carries messages. */
  get isLive(): boolean {
    return this.live;
  }

  get pendingAnswers(): number {
    return this.unanswered.size;
  }

  send(item: SettleItem): void {
    const message = toMessage(item);
    const bytes = frameBytes(message);
    // A result too large for a frame goes over HTTP, whose body may be 10 MiB (docs/payloads.md).
    if (bytes > MAX_FRAME_BYTES) {
      this.events.reroute(item);
      return;
    }
    this.sizes.set(message, bytes);
    const queue = this.unanswered.get(item.id);
    if (queue) queue.push(item);
    else this.unanswered.set(item.id, [item]);
    this.outbound.add(message);
  }

  heartbeat(load: Load): void {
    this.outbound.add(agentMessage.heartbeat(load));
  }

  /** Adds credits on the socket: the mesh may push `n` more tasks on it. */
  give(n: number): void {
    if (n <= 0 || !this.live) return;
    this.credits += n;
    this.outbound.add(agentMessage.ready(n));
  }

  flush(): void {
    this.outbound.flush();
  }

  /** Closes the socket for good: no redial; what it carried unanswered goes over HTTP. */
  stop(code: number, reason: string): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.socket) this.drop(code, reason);
  }

  // ---- the socket ---------------------------------------------------------------------------------------------

  dial(): void {
    this.reconnectTimer = null;
    if (this.stopped) return;
    let socket: SocketLike | null = null;
    // Events of a socket that was replaced are ignored: each handler checks it still owns `this.socket`.
    const events: SocketEvents = {
      onOpen: () => {},
      onMessage: (text) => {
        if (socket && this.socket === socket) this.receive(text);
      },
      onClose: (code, reason) => {
        if (socket && this.socket === socket) this.lost(code, `closed (${code}${reason ? ` ${reason}` : ""})`);
      },
      onError: (message) => {
        if (socket && this.socket === socket) this.events.log(`${this.label} error: ${message}`);
      },
    };
    try {
      socket = this.options.factory(this.options.url, events);
    } catch (err) {
      this.lost(null, err instanceof Error ? err.message : String(err));
      return;
    }
    this.socket = socket;
    const timeoutMs = this.options.helloTimeoutMs ?? 10_000;
    this.helloTimer = setTimeout(() => {
      if (this.socket === socket && !this.live) this.drop(4000, `no hello within ${timeoutMs} ms`);
    }, timeoutMs);
  }

  /** Closes the current socket on purpose and handles it as lost. */
  private drop(code: number, reason: string): void {
    const socket = this.socket;
    try {
      socket?.close(code, reason);
    } catch {
      // already closing
    }
    if (socket && this.socket === socket) this.lost(null, reason);
  }

  private lost(code: number | null, reason: string): void {
    const wasLive = this.live;
    if (this.helloTimer) clearTimeout(this.helloTimer);
    this.helloTimer = null;
    this.live = false;
    this.socket = null;
    // Credits belong to a socket; the mesh forgets them with it.
    this.credits = 0;
    this.owed = 0;
    this.pushed = 0;
    // What waited in the batcher or on the socket unanswered goes over HTTP now; credits and heartbeats of a dead
    // socket mean nothing (write() drops them).
    this.outbound.flush();
    const orphans = [...this.unanswered.values()].flat();
    this.unanswered.clear();
    for (const item of orphans) this.events.reroute(item);
    if (this.stopped) return;
    if (!this.events.lost(this, { code, reason, wasLive })) {
      this.stopped = true;
      return;
    }
    if (wasLive && Date.now() - this.connectedAt >= (this.options.stableMs ?? 10_000)) this.backoff.reset();
    const delay = this.backoff.next();
    this.events.log(`${this.label} ${reason}; reconnecting in ${delay} ms`);
    this.reconnectTimer = setTimeout(() => {
      if (this.events.wanted(this)) this.dial();
      else this.stopped = true;
    }, delay);
  }

  // ---- messages -----------------------------------------------------------------------------------------------

  private write(messages: AgentMessageInput[]): void {
    const socket = this.socket;
    // A socket that went away between queueing and flushing: its outcomes were rerouted by lost().
    if (!socket || !this.live) return;
    try {
      socket.send(agentFrame(messages));
    } catch (err) {
      this.drop(4001, `send failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private receive(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.events.log(`ignored a WebSocket frame that is not JSON: ${text.slice(0, 100)}`);
      return;
    }
    this.handle(parsed);
  }

  private handle(value: unknown): void {
    const batch = BatchEnvelope.safeParse(value);
    if (batch.success) {
      for (const message of batch.data.messages) this.handle(message);
      return;
    }
    const parsed = MeshMessage.safeParse(value);
    if (!parsed.success) {
      // The contract lets the mesh add message types; an agent that does not know one carries on.
      this.events.log(`ignored an unknown WebSocket message: ${JSON.stringify(value).slice(0, 200)}`);
      return;
    }
    const msg = parsed.data;
    switch (msg.type) {
      case "hello": {
        if (this.helloTimer) clearTimeout(this.helloTimer);
        this.helloTimer = null;
        this.live = true;
        this.connectedAt = Date.now();
        this.credits = 0;
        this.owed = 0;
        this.pushed = 0;
        this.shardId = msg.shard ?? this.shardId;
        const again = this.everLive;
        this.everLive = true;
        if (again) this.events.log(`${this.label} reconnected`);
        this.events.hello(this, msg);
        return;
      }
      case "task":
        if (this.credits <= 0) this.events.log(`the mesh pushed task ${msg.task.id} without a credit; running it anyway`);
        this.credits = Math.max(0, this.credits - 1);
        this.pushed++;
        this.events.task(this, msg.task);
        return;
      case "ack":
        this.answer(msg.id, { id: msg.id, ok: true, status: msg.status, leaseExpiresAt: msg.leaseExpiresAt ?? null });
        return;
      case "error":
        if (msg.id) this.answer(msg.id, { id: msg.id, ok: false, code: msg.error.code, message: msg.error.message });
        else this.frameRefused(`${msg.error.code}: ${msg.error.message}`);
        return;
      case "heartbeat":
        this.events.heartbeatAnswer(this, msg);
        return;
    }
  }

  /**
   * An error without an id refuses a whole frame (not parsed, or not applied), and does not say which one: what is
   * unanswered goes again over HTTP, whose answers are per item.
   */
  private frameRefused(reason: string): void {
    const pending = [...this.unanswered.values()].flat();
    this.unanswered.clear();
    this.events.log(`the mesh refused a frame (${reason})${pending.length > 0 ? `; sending ${pending.length} unanswered outcome(s) over HTTP` : ""}`);
    for (const item of pending) this.events.reroute(item);
  }

  /** The mesh answers each outcome of a task in the order they were sent. */
  private answer(id: string, result: SettleResult): void {
    const queue = this.unanswered.get(id);
    const item = queue?.shift();
    if (queue && queue.length === 0) this.unanswered.delete(id);
    if (item) this.events.settled(item, result);
    else if (!result.ok) this.events.log(`the mesh reported an error for ${id}: ${result.code}: ${result.message}`);
  }
}

function frameBytes(message: AgentMessageInput): number {
  return Buffer.byteLength(JSON.stringify(message));
}

function toMessage(item: SettleItem): AgentMessageInput {
  switch (item.action) {
    case "complete":
      return agentMessage.complete(item.id, item.leaseToken, item.result);
    case "fail":
      return agentMessage.fail(item.id, item.leaseToken, item.error, item.retryable);
    case "extend":
      return agentMessage.extend(item.id, item.leaseToken, item.extendMs);
  }
}
