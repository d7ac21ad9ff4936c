// The WebSocket transport in a pool of several shards, against a fake mesh: one socket per shard that serves agents,
// one credit budget over all of them (ws-credits.ts), outcomes on the socket of the task's shard, retired and
// vanished shards, and the same single socket as before when the mesh names no shards.
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Load, SettleItem, SettleResult } from "../../agent/sdk/api.ts";
import type { AgentApi, Settler, TransportHost } from "../../agent/sdk/transport.ts";
import { WsTransport, type SocketEvents, type SocketFactory, type SocketLike, type WsTransportOptions } from "../../agent/sdk/transport-ws.ts";
import { planCredits, type CreditSocket } from "../../agent/sdk/ws-credits.ts";
import type { AgentInfo, LeasedTask } from "../../agent/sdk/wire.ts";

const BASE = "ws://mesh.test:8787/v1/pools/p/agents/a1/connect?token=s%3Dcret";

type ShardState = "active" | "draining";

class FakeSocket implements SocketLike {
  readonly frames: unknown[] = [];
  readonly url: string;
  /** The shard asked for with `&shard=`, null for the home socket. */
  readonly target: string | null;
  /** The shard the mesh connected it to (after hello). */
  shard: string | null = null;
  closed: { code?: number; reason?: string } | null = null;
  dropped = false;
  pushed = 0;
  private readonly events: SocketEvents;

  constructor(url: string, events: SocketEvents) {
    this.url = url;
    this.target = new URL(url).searchParams.get("shard");
    this.events = events;
  }

  send(text: string): void {
    this.frames.push(JSON.parse(text));
  }

  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
  }

  get open(): boolean {
    return this.shard !== null && this.closed === null && !this.dropped;
  }

  messages(): Record<string, unknown>[] {
    return this.frames.flatMap((f) => (isBatch(f) ? f.messages : [f as Record<string, unknown>]));
  }

  /** What the agent's `ready` messages gave on this socket, less the tasks pushed on it (what the mesh may push). */
  credits(): number {
    const given = this.messages().reduce((n, m) => n + (m.type === "ready" ? Number(m.credits) : 0), 0);
    return given - this.pushed;
  }

  receive(message: unknown): void {
    this.events.onMessage(JSON.stringify(message));
  }

  push(...tasks: LeasedTask[]): void {
    this.pushed += tasks.length;
    this.receive(tasks.length === 1 ? { type: "task", task: tasks[0] } : { type: "batch", messages: tasks.map((task) => ({ type: "task", task })) });
  }

  drop(code = 1006, reason = ""): void {
    this.dropped = true;
    this.events.onClose(code, reason);
  }
}

function isBatch(f: unknown): f is { type: "batch"; messages: Record<string, unknown>[] } {
  return typeof f === "object" && f !== null && "type" in f && f.type === "batch";
}

/** Answers each new socket 1 ms later: hello with the shard list, or a refusal (404 before the upgrade). */
class FakeMesh {
  readonly sockets: FakeSocket[] = [];
  shards: { id: string; state: ShardState }[];
  home = "0";
  /** false: an older mesh, whose hello names no shards. */
  namesShards = true;

  constructor(shards: string[]) {
    this.shards = shards.map((id) => ({ id, state: "active" }));
  }

  readonly factory: SocketFactory = (url, events) => {
    const socket = new FakeSocket(url, events);
    this.sockets.push(socket);
    setTimeout(() => this.answer(socket), 1);
    return socket;
  };

  private answer(socket: FakeSocket): void {
    if (socket.closed || socket.dropped) return;
    const shard = socket.target ?? this.home;
    if (!this.shards.some((s) => s.id === shard)) {
      socket.drop(1006, "");
      return;
    }
    socket.shard = shard;
    const view = this.namesShards ? { shard, shards: this.shards } : {};
    socket.receive({ type: "hello", agentId: "a1", heartbeatIntervalMs: 5000, ...view });
  }

  /** The open socket to `shard`. */
  on(shard: string): FakeSocket {
    const socket = this.sockets.find((s) => s.open && s.shard === shard);
    if (!socket) throw new Error(`no open socket to shard ${shard}`);
    return socket;
  }

  openSockets(): FakeSocket[] {
    return this.sockets.filter((s) => s.open);
  }

  totalCredits(): number {
    return this.openSockets().reduce((n, s) => n + s.credits(), 0);
  }
}

let serial = 0;
/** A leased task whose id names its shard (contract/ids.ts). */
function leased(shard: string): LeasedTask {
  const id = `p.${shard}.${`t${++serial}`.padEnd(22, "x")}`;
  return { id, type: "p.work", pool: "p", payload: {}, attempt: 1, timeoutMs: 30_000, leaseToken: `tok-${id}`, leaseExpiresAt: new Date(Date.now() + 30_000).toISOString(), shard } as LeasedTask;
}

const complete = (task: LeasedTask): SettleItem => ({ action: "complete", id: task.id, leaseToken: task.leaseToken, result: null });

interface Harness {
  mesh: FakeMesh;
  transport: WsTransport;
  host: TransportHost & { capacity: number; running: LeasedTask[]; settled: [SettleItem, SettleResult][]; info: { heartbeatIntervalMs?: number; state?: string }[]; logs: string[] };
  settler: Settler & { sent: SettleItem[] };
  heartbeats: Load[];
  /** A task finished: its outcome is sent and its slot is free. */
  finish(task: LeasedTask): void;
}

function harness(shards: string[], capacity: number, overrides: Partial<WsTransportOptions> = {}): Harness {
  const mesh = new FakeMesh(shards);
  const host: Harness["host"] = {
    capacity,
    running: [],
    settled: [],
    info: [],
    logs: [],
    freeSlots() {
      return this.capacity - this.running.length;
    },
    onTask(task) {
      this.running.push(task);
    },
    onSettled(item, result) {
      this.settled.push([item, result]);
    },
    onAgentInfo(info) {
      this.info.push(info);
    },
    onAgentGone() {},
    log(line) {
      this.logs.push(line);
    },
  };
  const settler: Harness["settler"] = {
    sent: [],
    send(item) {
      this.sent.push(item);
    },
    async drain() {},
  };
  const heartbeats: Load[] = [];
  const client: AgentApi = {
    baseUrl: "http://mesh.test:8787",
    lease: async () => [],
    heartbeat: async (_pool, _id, load) => {
      heartbeats.push(load);
      const info: AgentInfo = { agentId: "a1", pool: "p", state: "running", capabilities: [], maxConcurrency: capacity, inFlight: 0, load: { ...load }, lastHeartbeatAt: new Date().toISOString(), heartbeatIntervalMs: 5000 };
      return info;
    },
  };
  const transport = new WsTransport({
    pool: "p",
    agentId: "a1",
    host,
    client,
    token: "s=cret",
    settler,
    socketFactory: mesh.factory,
    backoff: { baseMs: 4, maxMs: 8, random: () => 0 },
    ...overrides,
  });
  const finish = (task: LeasedTask): void => {
    // The task the host holds is the one parsed off the wire: the same lease, another object.
    host.running = host.running.filter((t) => t.leaseToken !== task.leaseToken);
    transport.send(complete(task));
    transport.wake();
  };
  return { mesh, transport, host, settler, heartbeats, finish };
}

/** Starts the transport and lets every socket say hello and send its first credits. */
async function started(h: Harness): Promise<void> {
  const start = h.transport.start();
  await vi.advanceTimersByTimeAsync(2);
  await start;
  await vi.advanceTimersByTimeAsync(10);
}

const settle = (ms = 10): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => {});

function outcomesOn(socket: FakeSocket): string[] {
  return socket.messages().flatMap((m) => (m.type === "complete" || m.type === "fail" ? [String(m.id)] : []));
}

describe("credit rule (ws-credits.ts)", () => {
  const s = (outstanding: number, extra: Partial<CreditSocket> = {}): CreditSocket => ({ outstanding, owed: 0, pushed: 0, active: true, ...extra });

  it("reach: every active socket without a credit gets one first, in turns when slots are fewer", () => {
    expect(planCredits({ room: 8, sockets: [s(0), s(0), s(0)], absent: 0, cursor: 0 }).grants).toEqual([1, 1, 1]);
    const first = planCredits({ room: 1, sockets: [s(0), s(0), s(0)], absent: 0, cursor: 0 });
    expect(first).toEqual({ grants: [1, 0, 0], cursor: 1 });
    const second = planCredits({ room: 1, sockets: [s(0), s(0), s(0)], absent: 0, cursor: first.cursor });
    expect(second).toEqual({ grants: [0, 1, 0], cursor: 2 });
    expect(planCredits({ room: 2, sockets: [s(0), s(0), s(0)], absent: 0, cursor: 2 }).grants).toEqual([1, 0, 1]);
  });

  it("back to the sender: a socket gets the slots of the finished tasks it delivered, a draining one too", () => {
    expect(planCredits({ room: 3, sockets: [s(0, { owed: 3 }), s(1)], absent: 0, cursor: 0 }).grants).toEqual([3, 0]);
    expect(planCredits({ room: 3, sockets: [s(1, { owed: 2 }), s(1)], absent: 0, cursor: 0 }).grants).toEqual([2, 0]);
    // Reach comes first: with one slot, a socket holding nothing gets it before a sender still holding one.
    expect(planCredits({ room: 1, sockets: [s(1, { owed: 1 }), s(0)], absent: 0, cursor: 0 }).grants).toEqual([0, 1]);
    expect(planCredits({ room: 2, sockets: [s(1), s(0, { owed: 2, active: false })], absent: 0, cursor: 0 }).grants).toEqual([0, 2]);
    // A draining shard gets no reach credit (here the active one is alone: it gets the rest).
    expect(planCredits({ room: 2, sockets: [s(1), s(1), s(0, { active: false })], absent: 0, cursor: 0 }).grants).toEqual([0, 0, 0]);
    expect(planCredits({ room: 2, sockets: [s(1), s(0, { active: false })], absent: 0, cursor: 0 }).grants).toEqual([2, 0]);
  });

  it("grow: up to twice the tasks pushed since the last round; alone: the only socket gets everything", () => {
    expect(planCredits({ room: 10, sockets: [s(0, { pushed: 3 }), s(1)], absent: 0, cursor: 0 }).grants).toEqual([6, 0]);
    expect(planCredits({ room: 4, sockets: [s(0, { pushed: 3 }), s(0)], absent: 0, cursor: 0 }).grants).toEqual([3, 1]);
    expect(planCredits({ room: 7, sockets: [s(0)], absent: 0, cursor: 0 }).grants).toEqual([7]);
    // Another shard's socket reconnecting: keep room for it.
    expect(planCredits({ room: 7, sockets: [s(0)], absent: 1, cursor: 0 }).grants).toEqual([1]);
    expect(planCredits({ room: 7, sockets: [s(0), s(0, { active: false })], absent: 0, cursor: 0 }).grants).toEqual([7, 0]);
  });
});

describe("WebSocket transport over several shards (fake mesh)", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("a hello listing three shards opens a socket to each other shard, with &shard=", async () => {
    const h = harness(["0", "1", "2"], 8);
    await started(h);
    expect(h.mesh.sockets.map((s) => s.url)).toEqual([BASE, `${BASE}&shard=1`, `${BASE}&shard=2`]);
    expect(h.transport.shards).toEqual(["0", "1", "2"]);
    // Every shard can push to the agent; the rest of its slots wait for a shard that shows work.
    expect(h.mesh.openSockets().map((s) => s.credits())).toEqual([1, 1, 1]);
    expect(h.transport.connected).toBe(true);
  });

  it("a shard with a backlog doubles its credits each round, up to the agent's free slots", async () => {
    const h = harness(["0", "1"], 8);
    await started(h);
    const one = h.mesh.on("1");
    const rounds: number[] = [];
    for (let round = 0; round < 4; round++) {
      const n = one.credits();
      rounds.push(n);
      one.push(...Array.from({ length: n }, () => leased("1")));
      await settle();
    }
    expect(rounds).toEqual([1, 2, 4, 0]);
    expect(h.host.running).toHaveLength(7);
    expect(h.mesh.on("0").credits()).toBe(1);
    expect(h.mesh.totalCredits()).toBe(h.host.freeSlots());
  });

  it("with fewer free slots than shards, the credit takes turns; a finished task's slot goes back to its sender", async () => {
    const h = harness(["0", "1", "2"], 2);
    await started(h);
    expect(h.mesh.openSockets().map((s) => s.credits())).toEqual([1, 1, 0]);
    const t = leased("0");
    h.mesh.on("0").push(t);
    await settle();
    h.finish(t);
    await settle();
    // Shard 2 had none: its turn.
    expect(h.mesh.openSockets().map((s) => s.credits())).toEqual([0, 1, 1]);

    const h2 = harness(["0", "1"], 4);
    await started(h2);
    const one = h2.mesh.on("1");
    const first = leased("1");
    one.push(first);
    await settle();
    expect(one.credits()).toBe(2);
    const more = [leased("1"), leased("1")];
    one.push(...more);
    await settle();
    // Three running, one credit on shard 0: nothing left to give.
    expect([h2.mesh.on("0").credits(), one.credits()]).toEqual([1, 0]);
    h2.finish(first);
    h2.finish(more[0]!);
    await settle();
    expect([h2.mesh.on("0").credits(), one.credits()]).toEqual([1, 2]);
  });

  it("sends each outcome on the socket of the shard that leased the task, over HTTP while it is down", async () => {
    const h = harness(["0", "1", "2"], 6);
    await started(h);
    const a = leased("1");
    const moved = { ...leased("2"), shard: "1" }; // its id names shard 2, but shard 1 leased it
    h.mesh.on("1").push(a);
    await settle();
    h.mesh.on("1").push(moved);
    await settle();
    h.finish(a);
    h.finish(moved);
    // Not delivered on a socket: the id says where it lives.
    const other = leased("2");
    h.transport.send(complete(other));
    await settle();
    expect(outcomesOn(h.mesh.on("1"))).toEqual([a.id, moved.id]);
    expect(outcomesOn(h.mesh.on("2"))).toEqual([other.id]);
    expect(outcomesOn(h.mesh.on("0"))).toEqual([]);
    h.mesh.on("1").receive({ type: "batch", messages: [{ type: "ack", id: a.id, status: "succeeded" }, { type: "error", id: moved.id, error: { code: "lease_lost", message: "gone" } }] });
    expect(h.host.settled.map(([item, result]) => [item.id, result.ok])).toEqual([
      [a.id, true],
      [moved.id, false],
    ]);

    const b = leased("1");
    h.mesh.on("1").push(b);
    await settle();
    h.mesh.on("1").drop();
    h.finish(b);
    expect(h.settler.sent).toEqual([complete(b)]);
  });

  it("a socket that closes with 4004 (shard retired) is not reopened, even if a stale list names the shard", async () => {
    const h = harness(["0", "1"], 4);
    await started(h);
    const one = h.mesh.on("1");
    const t = leased("1");
    one.push(t);
    await settle();
    h.finish(t);
    one.drop(4004, "shard retired");
    expect(h.settler.sent).toEqual([complete(t)]);
    await settle(1_000);
    expect(h.mesh.sockets).toHaveLength(2);
    expect(h.host.logs).toContain("shard 1 retired; its socket is not reopened");
    h.mesh.on("0").receive({ type: "heartbeat", state: "running", heartbeatIntervalMs: 5000, shards: [{ id: "0", state: "active" }, { id: "1", state: "draining" }] });
    await settle(100);
    expect(h.mesh.sockets).toHaveLength(2);
    expect(h.transport.shards).toEqual(["0"]);
    // Alone now: the home socket gets every free slot.
    expect(h.mesh.on("0").credits()).toBe(4);
  });

  it("the home shard retiring (4004): the home socket redials without shard and the new home's other socket goes", async () => {
    const h = harness(["0", "1"], 4);
    await started(h);
    const t = leased("1");
    h.mesh.on("1").push(t);
    await settle();
    const dedicated = h.mesh.on("1");
    h.mesh.shards = [{ id: "1", state: "active" }];
    h.mesh.home = "1";
    h.mesh.on("0").drop(4004, "shard retired");
    await settle(50);
    const home = h.mesh.sockets.at(-1);
    expect(home?.url).toBe(BASE);
    expect(home?.shard).toBe("1");
    expect(dedicated.closed).toEqual({ code: 1000, reason: "the home socket reaches this shard now" });
    expect(h.mesh.sockets.filter((s) => s.target === "0")).toHaveLength(0);
    expect(h.transport.shards).toEqual(["1"]);
    h.finish(t);
    await settle();
    expect(home && outcomesOn(home)).toEqual([t.id]);
  });

  it("a new shard in a heartbeat answer opens a socket; a shard no longer listed has its socket closed", async () => {
    const h = harness(["0", "1"], 6);
    await started(h);
    h.mesh.shards = [
      { id: "0", state: "active" },
      { id: "1", state: "active" },
      { id: "2", state: "active" },
    ];
    h.mesh.on("0").receive({ type: "heartbeat", state: "running", heartbeatIntervalMs: 5000, shards: h.mesh.shards });
    await settle();
    expect(h.mesh.sockets.map((s) => s.url)).toEqual([BASE, `${BASE}&shard=1`, `${BASE}&shard=2`]);
    expect(h.mesh.on("2").credits()).toBe(1);

    const one = h.mesh.on("1");
    const t = leased("1");
    one.push(t);
    await settle();
    h.finish(t); // sent on shard 1's socket, never answered
    await settle();
    h.mesh.shards = [
      { id: "0", state: "active" },
      { id: "2", state: "active" },
    ];
    h.mesh.on("0").receive({ type: "heartbeat", state: "running", heartbeatIntervalMs: 5000, shards: h.mesh.shards });
    expect(one.closed).toEqual({ code: 1000, reason: "the shard no longer serves agents" });
    expect(h.settler.sent).toEqual([complete(t)]);
    await settle(1_000);
    expect(h.mesh.sockets).toHaveLength(3);
    expect(h.transport.shards).toEqual(["0", "2"]);
  });

  it("a draining shard keeps its socket but gets credits only for slots of tasks it delivered", async () => {
    const h = harness(["0", "1"], 2);
    await started(h);
    const t = leased("1");
    h.mesh.on("1").push(t);
    await settle();
    h.mesh.shards = [
      { id: "0", state: "active" },
      { id: "1", state: "draining" },
    ];
    h.mesh.on("0").receive({ type: "heartbeat", state: "running", heartbeatIntervalMs: 5000, shards: h.mesh.shards });
    await settle();
    expect(h.mesh.on("1").credits()).toBe(0);
    h.finish(t);
    await settle();
    expect(outcomesOn(h.mesh.on("1"))).toEqual([t.id]);
    expect(h.mesh.on("1").credits()).toBe(1);
    const u = leased("0");
    h.mesh.on("0").push(u);
    await settle();
    h.finish(u);
    await settle();
    expect(h.mesh.on("1").credits()).toBe(1);
    expect(h.mesh.on("0").credits()).toBe(1);
  });

  it("heartbeats: one load sample on every open socket; over HTTP only while the home socket is down; state from home only", async () => {
    const h = harness(["0", "1"], 2);
    await started(h);
    const load: Load = { currentLoad: 0.25, queueDepth: 1, avgLatencyMs: 3 };
    await h.transport.heartbeat(load);
    await settle();
    for (const shard of ["0", "1"]) expect(h.mesh.on(shard).messages().filter((m) => m.type === "heartbeat")).toEqual([{ type: "heartbeat", load }]);
    expect(h.heartbeats).toEqual([]);

    h.mesh.on("1").receive({ type: "heartbeat", state: "terminating", heartbeatIntervalMs: 4000 });
    expect(h.host.info.at(-1)).toEqual({ heartbeatIntervalMs: 4000 });
    h.mesh.on("0").receive({ type: "heartbeat", state: "terminating", heartbeatIntervalMs: 4000 });
    expect(h.host.info.at(-1)).toEqual({ heartbeatIntervalMs: 4000, state: "terminating" });

    const one = h.mesh.on("1");
    h.mesh.on("0").drop();
    await h.transport.heartbeat(load);
    await settle(5);
    expect(h.heartbeats).toEqual([load]);
    expect(one.messages().filter((m) => m.type === "heartbeat")).toHaveLength(2);
  });

  it("close() waits for the answers on every socket, then closes them all with 1000", async () => {
    const h = harness(["0", "1"], 4);
    await started(h);
    const [a, b] = [leased("0"), leased("1")];
    h.mesh.on("0").push(a);
    h.mesh.on("1").push(b);
    await settle();
    h.finish(a);
    h.finish(b);
    const [zero, one] = [h.mesh.on("0"), h.mesh.on("1")];
    const closing = h.transport.close();
    await settle(20);
    zero.receive({ type: "ack", id: a.id, status: "succeeded" });
    await settle(20);
    expect(one.closed).toBeNull();
    one.receive({ type: "ack", id: b.id, status: "succeeded" });
    await settle(20);
    await closing;
    expect([zero.closed, one.closed]).toEqual([
      { code: 1000, reason: "agent stopping" },
      { code: 1000, reason: "agent stopping" },
    ]);
    expect(h.settler.sent).toEqual([]);
    await settle(1_000);
    expect(h.mesh.sockets).toHaveLength(2);
  });

  it("a hello without shards (an older mesh), or listing only its own, is one socket with every free slot", async () => {
    for (const [shards, names] of [[["0"], false], [["0"], true]] as const) {
      const h = harness([...shards], 3);
      h.mesh.namesShards = names;
      await started(h);
      expect(h.mesh.sockets.map((s) => s.url)).toEqual([BASE]);
      expect(h.mesh.on("0").messages()).toEqual([{ type: "ready", credits: 3 }]);
    }
  });

  it("property: the credits on all sockets never exceed the free slots, and no free slot is kept from a shard without credits", async () => {
    type Command =
      | { kind: "push"; socket: number; n: number }
      | { kind: "finish"; pick: number }
      | { kind: "drop"; socket: number }
      | { kind: "retire"; socket: number }
      | { kind: "wait"; ms: number };
    const command: fc.Arbitrary<Command> = fc.oneof(
      fc.record({ kind: fc.constant("push" as const), socket: fc.nat(5), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant("finish" as const), pick: fc.nat(20) }),
      fc.record({ kind: fc.constant("drop" as const), socket: fc.nat(5) }),
      fc.record({ kind: fc.constant("retire" as const), socket: fc.nat(5) }),
      fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 12 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 8 }), fc.array(command, { maxLength: 40 }), async (shardCount, capacity, commands) => {
        const shards = Array.from({ length: shardCount }, (_, i) => String(i));
        const h = harness(shards, capacity);
        await started(h);
        const delivered = new Map<string, string>();
        const check = (): void => {
          expect(h.mesh.totalCredits()).toBeLessThanOrEqual(h.host.freeSlots());
          expect(h.host.running.length).toBeLessThanOrEqual(capacity);
        };
        for (const c of commands) {
          const open = h.mesh.openSockets();
          if (c.kind === "push" && open.length > 0) {
            const socket = open[c.socket % open.length]!;
            const n = Math.min(c.n, socket.credits());
            const tasks = Array.from({ length: n }, () => leased(socket.shard ?? "?"));
            for (const t of tasks) delivered.set(t.id, socket.shard ?? "?");
            if (n > 0) socket.push(...tasks);
          } else if (c.kind === "finish" && h.host.running.length > 0) {
            h.finish(h.host.running[c.pick % h.host.running.length]!);
          } else if (c.kind === "drop" && open.length > 0) {
            open[c.socket % open.length]!.drop();
          } else if (c.kind === "retire") {
            // A shard other than the home one drains and retires: out of the list, its sockets closed with 4004.
            const others = open.filter((s) => s.shard !== h.mesh.home);
            const socket = others[c.socket % Math.max(1, others.length)];
            if (socket) {
              h.mesh.shards = h.mesh.shards.filter((x) => x.id !== socket.shard);
              socket.drop(4004, "shard retired");
            }
          } else if (c.kind === "wait") {
            await vi.advanceTimersByTimeAsync(c.ms);
          }
          await vi.advanceTimersByTimeAsync(0);
          check();
        }
        await settle(100);
        check();
        // Every shard has its socket back; one holding no credit means the agent has none left to give.
        expect(h.mesh.openSockets().map((s) => s.shard).sort()).toEqual(h.mesh.shards.map((x) => x.id).sort());
        const free = h.host.freeSlots();
        if (h.mesh.openSockets().some((s) => s.credits() === 0) || h.mesh.shards.length === 1) expect(h.mesh.totalCredits()).toBe(free);
        // Outcomes travel only on sockets of the shard that leased the task.
        for (const socket of h.mesh.sockets) for (const id of outcomesOn(socket)) expect(delivered.get(id)).toBe(socket.shard);
        vi.clearAllTimers();
      }),
      { numRuns: 150 },
    );
  });
});
