// WebSocket transport (API.md, "WebSocket messages"): the mesh pushes leased tasks, never more than the credits
// the agent gave with `ready`; outcomes, extensions, credits and heartbeats travel in `batch` messages collected for
// a few milliseconds, which the mesh applies in one transaction. A closed socket is not a failure: leases survive
// until heartbeats are missed, so each socket reconnects with backoff, sends what was unanswered over HTTP, and
// gets credits again (ws-connection.ts).
//
// A pool may have several shards (API.md, "Shards, routing and shared state"). The agent is a member of each: the
// home socket (dialled without `shard`) reaches its home shard, and when its hello lists the shards that serve
// agents, the transport holds one more socket per other shard (`&shard=<id>`), following the list in hello and in
// heartbeat answers. One credit budget covers every socket (ws-credits.ts); an outcome goes on the socket of the
// shard that leased the task (a shard settles only its own tasks), or over HTTP while that socket is down. A hello
// without `shards` (an older mesh) means one socket, as before.
import type { Load, SettleItem } from "./api.ts";
import type { BackoffOptions } from "./backoff.ts";
import { sleep } from "./timers.ts";
import { heartbeatOverHttp, type AgentApi, type Settler, type Transport, type TransportContext } from "./transport.ts";
import { connectUrl, ShardConnection, type ConnectionEvents, type HeartbeatAnswer, type HelloMessage, type Loss } from "./ws-connection.ts";
import { planCredits } from "./ws-credits.ts";
import type { AgentMessageInput } from "../../contract/wire/agent.ts";
import { parseTaskId } from "../../contract/ids.ts";
import { nodeSocket, type SocketEvents, type SocketFactory, type SocketLike } from "./socket.ts";

export { connectUrl, nodeSocket, type SocketEvents, type SocketFactory, type SocketLike };

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

/** The mesh's close code for a shard that retired after a drain (its CLOSE.shardRetired). */
export const CLOSE_SHARD_RETIRED = 4004;

type ShardList = NonNullable<HelloMessage["shards"]>;

export class WsTransport implements Transport {
  readonly name = "websocket";
  private readonly options: WsTransportOptions;
  private readonly factory: SocketFactory;
  private readonly events: ConnectionEvents;
  /** Dialled without `shard`: the agent's home shard, whichever it is now. */
  private readonly home: ShardConnection;
  /** Sockets to the pool's other shards that serve agents, by shard id. */
  private readonly others = new Map<string, ShardConnection>();
  /** Shards that closed a socket as retired: never dialled again (shard ids are not reused). */
  private readonly retired = new Set<string>();
  private readonly leases = new LeaseShards();
  private cursor = 0;
  private grantQueued = false;
  private paused = false;
  private closed = false;
  private firstConnect: { resolve: () => void; reject: (err: Error) => void } | null = null;

  constructor(options: WsTransportOptions) {
    this.options = options;
    this.factory = options.socketFactory ?? nodeSocket;
    this.events = {
      hello: (conn, msg) => this.onHello(conn, msg),
      task: (conn, task) => {
        this.leases.set(task.leaseToken, conn.shardId ?? null);
        this.options.host.onTask(task);
        // A push shows the shard has work: the next round may give it more (once for a whole frame of tasks).
        this.grantSoon();
      },
      heartbeatAnswer: (conn, msg) => this.onHeartbeatAnswer(conn, msg),
      settled: (item, result) => this.options.host.onSettled(item, result),
      reroute: (item) => this.options.settler.send(item),
      lost: (conn, loss) => this.onLost(conn, loss),
      wanted: (conn) => this.wanted(conn),
      log: (line) => this.options.host.log(line),
    };
    this.home = this.connection(null);
  }

  /** The home socket is open. */
  get connected(): boolean {
    return this.home.isLive;
  }

  /** The shards this agent holds a socket to (open or reconnecting), the home shard first when known. */
  get shards(): string[] {
    return this.connections().flatMap((c) => c.shardId ?? c.target ?? []);
  }

  /** Resolves on the home socket's first `hello`; rejects if it closes (or times out) before it. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      this.home.dial();
    });
  }

  wake(): void {
    this.grant();
  }

  send(item: SettleItem): void {
    const delivered = item.action === "extend" ? this.leases.get(item.leaseToken) : this.leases.take(item.leaseToken);
    const conn = this.route(item.id, delivered);
    if (!conn?.isLive) {
      // The settler reaches any shard by the task's id.
      this.options.settler.send(item);
      return;
    }
    // A finished task's slot goes preferably back to the shard that delivered it (ws-credits.ts).
    if (item.action !== "extend" && delivered !== undefined) conn.owed++;
    conn.send(item);
  }

  async heartbeat(load: Load): Promise<void> {
    // Each shard tracks the agent's liveness on its own: one sample of the agent's load goes on every open socket,
    // and each answers with the agent's state and interval (a `heartbeat` message).
    for (const conn of this.connections()) if (conn.isLive) conn.heartbeat(load);
    // Without the home socket heartbeats go over HTTP (to the home shard): missing them would fail the agent and
    // give its leases away.
    if (!this.home.isLive) await heartbeatOverHttp(this.options, load);
  }

  pause(): void {
    this.paused = true;
  }

  async close(): Promise<void> {
    this.paused = true;
    this.closed = true;
    const all = this.connections();
    for (const conn of all) conn.flush();
    // Give the mesh a moment to answer what is in flight on the sockets before letting go of them.
    const deadline = Date.now() + 5_000;
    while (all.some((c) => c.isLive && c.pendingAnswers > 0) && Date.now() < deadline) await sleep(10);
    for (const conn of all) conn.stop(1000, "agent stopping");
    await this.options.settler.drain(10_000);
  }

  // ---- connections --------------------------------------------------------------------------------------------

  private connection(target: string | null): ShardConnection {
    const { client, pool, agentId, token } = this.options;
    return new ShardConnection({
      url: connectUrl(client.baseUrl, pool, agentId, token, target ?? undefined),
      target,
      label: target === null ? "WebSocket" : `WebSocket to shard ${target}`,
      factory: this.factory,
      events: this.events,
      backoff: this.options.backoff,
      stableMs: this.options.stableMs,
      helloTimeoutMs: this.options.helloTimeoutMs,
      batchMaxItems: this.options.batchMaxItems,
      batchMaxDelayMs: this.options.batchMaxDelayMs,
    });
  }

  /** A socket to another shard is redialled while it is that shard's, and the home socket does not reach it. */
  private wanted(conn: ShardConnection): boolean {
    if (this.closed) return false;
    if (conn === this.home) return true;
    return conn.target !== null && this.others.get(conn.target) === conn && conn.target !== this.home.shardId;
  }

  /** The home socket first, then the others by shard number: the order credits rotate in. */
  private connections(): ShardConnection[] {
    const others = [...this.others.entries()].sort(([a], [b]) => Number(a) - Number(b) || a.localeCompare(b)).map(([, c]) => c);
    return [this.home, ...others];
  }

  /**
   * Where an outcome goes: the shard that delivered the lease, else the shard its id names, on the home socket when
   * that is the home shard (or the mesh names no shards); null when no socket reaches that shard.
   */
  private route(id: string, delivered: string | null | undefined): ShardConnection | null {
    const shard = delivered === undefined ? shardOfTaskId(id) : delivered;
    if (shard === null || this.home.shardId === undefined || this.home.shardId === shard) return this.home;
    return this.others.get(shard) ?? null;
  }

  private onHello(conn: ShardConnection, msg: HelloMessage): void {
    const { host } = this.options;
    host.onAgentInfo({ heartbeatIntervalMs: msg.heartbeatIntervalMs });
    if (conn === this.home) {
      if (this.firstConnect) {
        this.firstConnect.resolve();
        this.firstConnect = null;
      }
      // After the old home retired, the new home may be a shard held by another socket: the mesh keeps the newer
      // socket of an agent on a shard, so that one goes.
      const twin = msg.shard === undefined ? undefined : this.others.get(msg.shard);
      if (msg.shard !== undefined && twin) {
        this.others.delete(msg.shard);
        twin.stop(1000, "the home socket reaches this shard now");
      }
    } else if (msg.shard !== undefined && msg.shard !== conn.target) {
      host.log(`${conn.label} reached shard ${msg.shard}`);
    }
    if (msg.shards && (conn === this.home || !this.home.isLive)) this.follow(msg.shards);
    this.grant();
  }

  private onHeartbeatAnswer(conn: ShardConnection, msg: HeartbeatAnswer): void {
    // The agent's lifecycle state is the home shard's to say; other shards only keep the interval in step.
    if (conn === this.home) this.options.host.onAgentInfo({ heartbeatIntervalMs: msg.heartbeatIntervalMs, state: msg.state });
    else this.options.host.onAgentInfo({ heartbeatIntervalMs: msg.heartbeatIntervalMs });
    if (msg.shards && (conn === this.home || !this.home.isLive)) {
      this.follow(msg.shards);
      this.grant();
    }
  }

  /**
   * Holds one socket per listed shard besides the home one: opens the new ones, closes those no longer listed.
   * The home socket's list counts; while it is down, any socket's does.
   */
  private follow(shards: ShardList): void {
    const home = this.home.shardId;
    // A list without the socket's own shard comes from no mesh we know; one socket, as with an older mesh.
    if (home === undefined) return;
    const listed = new Map(shards.map((s) => [s.id, s.state === "draining" ? "draining" : "active"] as const));
    this.home.serving = listed.get(home) ?? "active";
    for (const [id, conn] of this.others) {
      if (listed.has(id) && id !== home) continue;
      this.others.delete(id);
      this.options.host.log(`shard ${id} no longer serves agents; closing its socket`);
      conn.stop(1000, "the shard no longer serves agents");
    }
    if (this.closed) return;
    for (const [id, serving] of listed) {
      if (id === home || this.retired.has(id)) continue;
      let conn = this.others.get(id);
      if (!conn) {
        conn = this.connection(id);
        this.others.set(id, conn);
        conn.dial();
      }
      conn.serving = serving;
    }
  }

  private onLost(conn: ShardConnection, { code, reason, wasLive }: Loss): boolean {
    const { host } = this.options;
    if (conn === this.home) {
      if (!wasLive && this.firstConnect) {
        this.firstConnect.reject(new Error(`cannot open the WebSocket: ${reason}`));
        this.firstConnect = null;
        return false;
      }
      // The home shard retired: dialling without `shard` reaches the agent's new home.
      if (code === CLOSE_SHARD_RETIRED && conn.shardId !== undefined) {
        this.retired.add(conn.shardId);
        host.log(`home shard ${conn.shardId} retired; the home socket goes to the agent's new home shard`);
      }
    } else if (code === CLOSE_SHARD_RETIRED && conn.target !== null) {
      this.retired.add(conn.target);
      if (this.others.get(conn.target) === conn) this.others.delete(conn.target);
      host.log(`shard ${conn.target} retired; its socket is not reopened`);
      this.grant();
      return false;
    }
    // The lost socket's credits are free again: the other sockets may take them.
    this.grant();
    return !this.closed;
  }

  /** Offers free slots not yet given as credits to the open sockets (the rule is in ws-credits.ts). */
  private grant(): void {
    if (this.paused || this.closed) return;
    const all = this.connections();
    const live = all.filter((c) => c.isLive);
    if (live.length === 0) return;
    const room = this.options.host.freeSlots() - live.reduce((n, c) => n + c.credits, 0);
    if (room <= 0) return;
    const plan = planCredits({
      room,
      sockets: live.map((c) => ({ outstanding: c.credits, owed: c.owed, pushed: c.pushed, active: c.serving === "active" })),
      absent: all.filter((c) => !c.isLive && c.serving === "active").length,
      cursor: this.cursor,
    });
    this.cursor = plan.cursor;
    live.forEach((c, i) => {
      c.give(plan.grants[i] ?? 0);
      c.owed = 0;
      c.pushed = 0;
    });
  }

  private grantSoon(): void {
    if (this.grantQueued) return;
    this.grantQueued = true;
    queueMicrotask(() => {
      this.grantQueued = false;
      this.grant();
    });
  }
}

function shardOfTaskId(id: string): string | null {
  const home = parseTaskId(id);
  return home ? String(home.shard) : null;
}

/** Which shard delivered each lease held, by lease token: outcomes go back there. */
class LeaseShards {
  /** More than any agent runs at once; beyond it the oldest entries go (their outcomes are routed by task id). */
  private static readonly MAX = 10_000;
  private readonly byToken = new Map<string, string | null>();

  set(leaseToken: string, shard: string | null): void {
    this.byToken.delete(leaseToken);
    this.byToken.set(leaseToken, shard);
    if (this.byToken.size > LeaseShards.MAX) {
      const oldest = this.byToken.keys().next();
      if (!oldest.done) this.byToken.delete(oldest.value);
    }
  }

  /** undefined: not delivered on a socket (or forgotten); null: by the home socket of a mesh without shards. */
  get(leaseToken: string): string | null | undefined {
    return this.byToken.get(leaseToken);
  }

  take(leaseToken: string): string | null | undefined {
    const shard = this.byToken.get(leaseToken);
    this.byToken.delete(leaseToken);
    return shard;
  }
}
