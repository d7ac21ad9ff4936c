// The WebSocket transport's message logic against a fake socket: credits, batching, acks, reconnects.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Load, SettleItem, SettleResult } from "../../agent/sdk/api.ts";
import type { AgentApi, Settler, TransportHost } from "../../agent/sdk/transport.ts";
import { connectUrl, WsTransport, type SocketEvents, type SocketFactory, type SocketLike, type WsTransportOptions } from "../../agent/sdk/transport-ws.ts";
import type { AgentInfo, LeasedTask } from "../../agent/sdk/wire.ts";

class FakeSocket implements SocketLike {
  readonly frames: unknown[] = [];
  closed: { code?: number; reason?: string } | null = null;
  readonly url: string;
  private readonly events: SocketEvents;

  constructor(url: string, events: SocketEvents) {
    this.url = url;
    this.events = events;
  }

  send(text: string): void {
    this.frames.push(JSON.parse(text));
  }

  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
  }

  /** Every message sent, batches unpacked. */
  messages(): Record<string, unknown>[] {
    return this.frames.flatMap((f) => (isBatch(f) ? f.messages : [f as Record<string, unknown>]));
  }

  hello(heartbeatIntervalMs = 5000): void {
    this.receive({ type: "hello", agentId: "a1", heartbeatIntervalMs });
  }

  receive(message: unknown): void {
    this.events.onMessage(JSON.stringify(message));
  }

  receiveText(text: string): void {
    this.events.onMessage(text);
  }

  drop(code = 1006): void {
    this.events.onClose(code, "");
  }
}

function isBatch(f: unknown): f is { type: "batch"; messages: Record<string, unknown>[] } {
  return typeof f === "object" && f !== null && "type" in f && f.type === "batch";
}

function leased(id: string, token = `tok-${id}`): LeasedTask {
  return { id, type: "p.work", pool: "p", payload: { id }, attempt: 1, timeoutMs: 30_000, leaseToken: token, leaseExpiresAt: new Date(Date.now() + 30_000).toISOString() };
}

const agentInfo = (heartbeatIntervalMs: number, state = "running"): AgentInfo => ({
  agentId: "a1",
  pool: "p",
  state,
  capabilities: [],
  maxConcurrency: 2,
  inFlight: 0,
  load: { currentLoad: 0, queueDepth: 0, avgLatencyMs: 0 },
  lastHeartbeatAt: new Date().toISOString(),
  heartbeatIntervalMs,
});

interface Harness {
  transport: WsTransport;
  sockets: FakeSocket[];
  host: TransportHost & { capacity: number; running: number; tasks: LeasedTask[]; settled: [SettleItem, SettleResult][]; info: unknown[]; logs: string[] };
  settler: Settler & { sent: SettleItem[] };
  heartbeats: Load[];
}

function harness(overrides: Partial<WsTransportOptions> = {}, capacity = 2): Harness {
  const sockets: FakeSocket[] = [];
  const factory: SocketFactory = (url, events) => {
    const s = new FakeSocket(url, events);
    sockets.push(s);
    return s;
  };
  const host: Harness["host"] = {
    capacity,
    running: 0,
    tasks: [],
    settled: [],
    info: [],
    logs: [],
    freeSlots() {
      return this.capacity - this.running;
    },
    onTask(task) {
      this.tasks.push(task);
      this.running++;
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
      return agentInfo(777);
    },
  };
  const transport = new WsTransport({
    pool: "p",
    agentId: "a1",
    host,
    client,
    token: "s=cret",
    settler,
    socketFactory: factory,
    backoff: { random: () => 0 },
    ...overrides,
  });
  return { transport, sockets, host, settler, heartbeats };
}

async function connected(h: Harness): Promise<FakeSocket> {
  const started = h.transport.start();
  const socket = h.sockets.at(-1);
  if (!socket) throw new Error("no socket dialled");
  socket.hello();
  await started;
  return socket;
}

const complete = (id: string): SettleItem => ({ action: "complete", id, leaseToken: `tok-${id}`, result: { id } });

describe("WebSocket transport (fake socket)", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("dials /connect with the credential in ?token=, and gives its free slots as credits after hello", async () => {
    const h = harness({}, 3);
    const socket = await connected(h);
    expect(socket.url).toBe("ws://mesh.test:8787/v1/pools/p/agents/a1/connect?token=s%3Dcret");
    expect(h.host.info).toEqual([{ heartbeatIntervalMs: 5000 }]);
    await vi.advanceTimersByTimeAsync(5);
    expect(socket.messages()).toEqual([{ type: "ready", credits: 3 }]);
    expect(connectUrl("https://mesh.example.com/", "p", "a:1", "t")).toBe("wss://mesh.example.com/v1/pools/p/agents/a%3A1/connect?token=t");
  });

  it("never gives credits beyond free slots; finished tasks give them back, batched with their outcomes", async () => {
    const h = harness({}, 2);
    const socket = await connected(h);
    await vi.advanceTimersByTimeAsync(5);
    socket.receive({ type: "batch", messages: [{ type: "task", task: leased("t1") }, { type: "task", task: leased("t2") }] });
    expect(h.host.tasks.map((t) => t.id)).toEqual(["t1", "t2"]);
    h.transport.wake(); // no free slot: nothing to give
    await vi.advanceTimersByTimeAsync(5);
    expect(socket.frames).toHaveLength(1);

    h.host.running -= 2;
    h.transport.send(complete("t1"));
    h.transport.send(complete("t2"));
    h.transport.wake();
    h.transport.wake(); // asking twice gives no more credits than slots
    await vi.advanceTimersByTimeAsync(5);
    expect(socket.frames).toHaveLength(2);
    expect(socket.frames[1]).toEqual({
      type: "batch",
      messages: [
        { type: "complete", id: "t1", leaseToken: "tok-t1", result: { id: "t1" } },
        { type: "complete", id: "t2", leaseToken: "tok-t2", result: { id: "t2" } },
        { type: "ready", credits: 2 },
      ],
    });
  });

  it("answers each outcome with its ack or error, in sending order per task", async () => {
    const h = harness();
    const socket = await connected(h);
    const extend: SettleItem = { action: "extend", id: "t1", leaseToken: "tok-t1", extendMs: 30_000 };
    const fail: SettleItem = { action: "fail", id: "t2", leaseToken: "tok-t2", error: { message: "boom" }, retryable: false };
    h.transport.send(extend);
    h.transport.send(complete("t1"));
    h.transport.send(fail);
    await vi.advanceTimersByTimeAsync(5);
    expect(socket.messages().slice(-3).map((m) => m.type)).toEqual(["extend", "complete", "fail"]);
    socket.receive({
      type: "batch",
      messages: [
        { type: "ack", id: "t1", status: "leased", leaseExpiresAt: "2030-01-01T00:00:00.000Z" },
        { type: "ack", id: "t1", status: "succeeded" },
        { type: "error", id: "t2", error: { code: "lease_lost", message: "the lease is not current" } },
      ],
    });
    expect(h.host.settled).toEqual([
      [extend, { id: "t1", ok: true, status: "leased", leaseExpiresAt: "2030-01-01T00:00:00.000Z" }],
      [complete("t1"), { id: "t1", ok: true, status: "succeeded", leaseExpiresAt: null }],
      [fail, { id: "t2", ok: false, code: "lease_lost", message: "the lease is not current" }],
    ]);
  });

  it("after a drop: unanswered outcomes go over HTTP, it reconnects with backoff and gives its free slots again", async () => {
    const h = harness({}, 2);
    const first = await connected(h);
    first.receive({ type: "task", task: leased("t1") });
    h.host.running = 0;
    h.transport.send(complete("t1"));
    await vi.advanceTimersByTimeAsync(5);
    first.drop();
    expect(h.settler.sent).toEqual([complete("t1")]);
    // Between sockets, outcomes take the HTTP path directly.
    h.transport.send(complete("t9"));
    expect(h.settler.sent).toEqual([complete("t1"), complete("t9")]);
    expect(h.host.logs.at(-1)).toBe("WebSocket closed (1006); reconnecting in 125 ms");

    await vi.advanceTimersByTimeAsync(124);
    expect(h.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.sockets).toHaveLength(2);
    const second = h.sockets[1];
    second?.hello();
    await vi.advanceTimersByTimeAsync(5);
    // Credits belong to a connection: the new socket gets every free slot.
    expect(second?.messages()).toEqual([{ type: "ready", credits: 2 }]);
    expect(h.host.logs).toContain("WebSocket reconnected");
  });

  it("backs off further while reconnects fail, and starts over after a stable connection", async () => {
    const h = harness({ backoff: { baseMs: 100, maxMs: 1_000, random: () => 0 }, stableMs: 1_000 });
    const first = await connected(h);
    const delays = (): number[] => h.host.logs.flatMap((l) => /reconnecting in (\d+) ms/.exec(l)?.[1] ?? []).map(Number);
    first.drop();
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(1_000);
      h.sockets.at(-1)?.drop(); // refused before hello
    }
    expect(delays()).toEqual([50, 100, 200, 400, 500]);
    await vi.advanceTimersByTimeAsync(1_000);
    h.sockets.at(-1)?.hello();
    await vi.advanceTimersByTimeAsync(1_000); // stable
    h.sockets.at(-1)?.drop();
    expect(delays().at(-1)).toBe(50);
  });

  it("start() rejects when the first socket closes before hello (so auto can fall back to HTTP)", async () => {
    const h = harness();
    const started = h.transport.start();
    h.sockets[0]?.drop(1006);
    await expect(started).rejects.toThrow(/cannot open the WebSocket: closed \(1006\)/);
  });

  it("drops a socket that says no hello in time", async () => {
    const h = harness({ helloTimeoutMs: 1_000 });
    const started = h.transport.start();
    const rejected = expect(started).rejects.toThrow(/no hello within 1000 ms/);
    await vi.advanceTimersByTimeAsync(1_000);
    await rejected;
    expect(h.sockets[0]?.closed).toEqual({ code: 4000, reason: "no hello within 1000 ms" });
  });

  it("sends heartbeats on the socket, and takes interval and state from the mesh's heartbeat answer", async () => {
    const h = harness();
    const socket = await connected(h);
    const load: Load = { currentLoad: 0.5, queueDepth: 1, avgLatencyMs: 12 };
    for (let i = 0; i < 6; i++) await h.transport.heartbeat(load);
    await vi.advanceTimersByTimeAsync(5);
    expect(socket.messages().filter((m) => m.type === "heartbeat")).toHaveLength(6);
    expect(h.heartbeats).toEqual([]);
    socket.receive({ type: "heartbeat", state: "terminating", heartbeatIntervalMs: 777 });
    expect(h.host.info.at(-1)).toEqual({ heartbeatIntervalMs: 777, state: "terminating" });
  });

  it("a frame refused without an id: what is unanswered goes again over HTTP", async () => {
    const h = harness();
    const socket = await connected(h);
    h.transport.send(complete("t1"));
    await vi.advanceTimersByTimeAsync(5);
    socket.receive({ type: "error", id: null, error: { code: "invalid_request", message: "the frame is not a message of the protocol" } });
    expect(h.settler.sent).toEqual([complete("t1")]);
    expect(h.host.logs.at(-1)).toMatch(/refused a frame \(invalid_request: .*\); sending 1 unanswered outcome\(s\) over HTTP/);
  });

  it("ignores unknown messages and frames that are not JSON, and keeps working", async () => {
    const h = harness();
    const socket = await connected(h);
    socket.receive({ type: "news", text: "hi" });
    socket.receiveText("not json");
    socket.receive({ type: "task", task: leased("t1") });
    expect(h.host.tasks.map((t) => t.id)).toEqual(["t1"]);
    expect(h.host.logs.some((l) => l.startsWith("ignored an unknown WebSocket message"))).toBe(true);
    expect(h.host.logs.some((l) => l.startsWith("ignored a WebSocket frame that is not JSON"))).toBe(true);
  });

  it("close() waits for answers to what is in flight, then closes the socket with 1000", async () => {
    const h = harness();
    const socket = await connected(h);
    h.transport.send(complete("t1"));
    const closing = h.transport.close();
    await vi.advanceTimersByTimeAsync(20);
    expect(socket.closed).toBeNull();
    socket.receive({ type: "ack", id: "t1", status: "succeeded" });
    await vi.advanceTimersByTimeAsync(20);
    await closing;
    expect(socket.closed).toEqual({ code: 1000, reason: "agent stopping" });
    expect(h.settler.sent).toEqual([]);
  });
});
