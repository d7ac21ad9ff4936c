import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { env } from "cloudflare:workers";
import { keyringFromEnv } from "../../lib/security/keyring";
import { issueToken } from "../../lib/security/tokens";
import { ADMIN_KEY, api, expectError, freshPool, PoolClock, register, submit } from "../helpers";
import { as, createKey } from "../security/fixtures";

/** An agent's end of the WebSocket, as a test drives it: send frames, await the mesh's messages in order. */
class AgentSocket {
  private readonly inbox: any[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  closeCode: number | null = null;

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (e) => {
      const msg = JSON.parse(e.data as string);
      // Batches are unpacked so tests see messages one by one, in order.
      this.inbox.push(...(msg.type === "batch" ? msg.messages : [msg]));
      for (const w of this.waiters.splice(0)) w();
    });
    ws.addEventListener("close", (e) => {
      this.closed = true;
      this.closeCode = e.code;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  send(msg: unknown): void {
    this.ws.send(JSON.stringify(msg));
  }

  /** The next message, waiting up to `ms`. */
  async next(ms = 3000): Promise<any> {
    const deadline = Date.now() + ms;
    while (this.inbox.length === 0) {
      if (Date.now() > deadline || this.closed) throw new Error(`no message within ${ms} ms`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.inbox.shift();
  }

  /** Messages that arrive within `ms` (to show that nothing more came). */
  async drain(ms = 300): Promise<any[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.inbox.splice(0);
  }

  close(): void {
    this.ws.close(1000, "test done");
  }
}

/** Every audit record of the admin key's tenant, page after page. */
async function auditRecords(): Promise<any[]> {
  const records = [] as any[];
  for (let cursor: string | null = null, first = true; first || cursor !== null; first = false) {
    const page: any = await api("GET", `/v1/audit?limit=1000${cursor ? `&cursor=${cursor}` : ""}`);
    records.push(...page.body.records);
    cursor = page.body.cursor;
  }
  return records;
}

async function connect(pool: string, agentId: string, token = ADMIN_KEY): Promise<AgentSocket> {
  const res = await exports.default.fetch(
    new Request(`https://mesh.test/v1/pools/${pool}/agents/${agentId}/connect?token=${encodeURIComponent(token)}`, { headers: { upgrade: "websocket" } }),
  );
  if (res.status !== 101 || !res.webSocket) throw new Error(`connect answered ${res.status}: ${await res.text()}`);
  return new AgentSocket(res.webSocket);
}

describe("WebSocket push", () => {
  it("says hello first, then pushes no more tasks than the credits given", async () => {
    const pool = freshPool("ws");
    await register(pool, "a1", { maxConcurrency: 10 });
    const ws = await connect(pool, "a1");
    expect(await ws.next()).toEqual({ type: "hello", agentId: "a1", heartbeatIntervalMs: 5000, shard: "0", shards: [{ id: "0", state: "active" }] });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await submit(pool, { payload: { i } })).id);
    expect(await ws.drain()).toEqual([]);
    ws.send({ type: "ready", credits: 2 });
    const first = await ws.next();
    const second = await ws.next();
    expect([first.type, second.type]).toEqual(["task", "task"]);
    expect([first.task.id, second.task.id]).toEqual(ids.slice(0, 2));
    expect(first.task).toMatchObject({ status: "leased", attempt: 1, payload: { i: 0 }, agentId: "a1" });
    expect(typeof first.task.leaseToken).toBe("string");
    expect(await ws.drain()).toEqual([]);
    // A completion does not give a credit back.
    ws.send({ type: "complete", id: first.task.id, leaseToken: first.task.leaseToken, result: { ok: true } });
    expect(await ws.next()).toEqual({ type: "ack", id: first.task.id, status: "succeeded" });
    expect(await ws.drain()).toEqual([]);
    ws.send({ type: "ready", credits: 1 });
    expect((await ws.next()).task.id).toBe(ids[2]);
    expect((await api("GET", `/v1/tasks/${first.task.id}`)).body.result).toEqual({ ok: true });
    expect((await api("GET", `/v1/pools/${pool}/agents/a1`)).body.credits).toBe(0);
    ws.close();
  });

  it("pushes a task as soon as it is queued to an agent holding credits", async () => {
    const pool = freshPool("ws");
    await register(pool, "a1", { maxConcurrency: 4 });
    const ws = await connect(pool, "a1");
    await ws.next();
    ws.send({ type: "ready", credits: 4 });
    await ws.drain(100);
    const started = Date.now();
    const t = await submit(pool);
    const pushed = await ws.next();
    expect(pushed.task.id).toBe(t.id);
    expect(Date.now() - started).toBeLessThan(1000);
    ws.close();
  });

  it("applies a batch in order and answers it in one frame; stale tokens get lease_lost", async () => {
    const pool = freshPool("ws");
    await register(pool, "a1", { maxConcurrency: 10 });
    for (let i = 0; i < 3; i++) await submit(pool, { maxAttempts: 2 });
    const ws = await connect(pool, "a1");
    await ws.next();
    ws.send({ type: "ready", credits: 3 });
    const tasks = [(await ws.next()).task, (await ws.next()).task, (await ws.next()).task];
    ws.send({
      type: "batch",
      messages: [
        { type: "complete", id: tasks[0].id, leaseToken: tasks[0].leaseToken, result: 1 },
        { type: "fail", id: tasks[1].id, leaseToken: tasks[1].leaseToken, error: { message: "boom" } },
        { type: "extend", id: tasks[2].id, leaseToken: tasks[2].leaseToken, extendMs: 60_000 },
        { type: "complete", id: tasks[0].id, leaseToken: tasks[0].leaseToken },
        { type: "heartbeat", load: { currentLoad: 0.25, queueDepth: 1, avgLatencyMs: 12 } },
      ],
    });
    expect(await ws.next()).toEqual({ type: "ack", id: tasks[0].id, status: "succeeded" });
    expect(await ws.next()).toEqual({ type: "ack", id: tasks[1].id, status: "waiting" });
    expect(await ws.next()).toMatchObject({ type: "ack", id: tasks[2].id, status: "leased", leaseExpiresAt: expect.any(String) });
    expect(await ws.next()).toMatchObject({ type: "error", id: tasks[0].id, error: { code: "lease_lost" } });
    expect(await ws.next()).toEqual({ type: "heartbeat", state: "running", heartbeatIntervalMs: 5000, shards: [{ id: "0", state: "active" }] });
    expect((await api("GET", `/v1/pools/${pool}/agents/a1`)).body.load).toEqual({ currentLoad: 0.25, queueDepth: 1, avgLatencyMs: 12 });
    ws.close();
  });

  it("answers a malformed frame with an error and stays open", async () => {
    const pool = freshPool("ws");
    await register(pool, "a1");
    const ws = await connect(pool, "a1");
    await ws.next();
    ws.ws.send("not json");
    expect(await ws.next()).toMatchObject({ type: "error", id: null, error: { code: "invalid_request" } });
    ws.send({ type: "ready", credits: -1 });
    expect(await ws.next()).toMatchObject({ type: "error", error: { code: "invalid_request" } });
    ws.send({ type: "ready", credits: 1 });
    const t = await submit(pool);
    expect((await ws.next()).task.id).toBe(t.id);
    ws.close();
  });

  it("keeps the leases of a closed socket, so a reconnect loses nothing", async () => {
    const pool = freshPool("ws");
    await register(pool, "a1", { maxConcurrency: 2 });
    const t = await submit(pool);
    const first = await connect(pool, "a1");
    await first.next();
    first.send({ type: "ready", credits: 2 });
    const pushed = (await first.next()).task;
    first.close();
    await new Promise((r) => setTimeout(r, 100));
    expect((await api("GET", `/v1/tasks/${t.id}`)).body.status).toBe("leased");
    const again = await connect(pool, "a1");
    expect((await again.next()).type).toBe("hello");
    again.send({ type: "complete", id: t.id, leaseToken: pushed.leaseToken, result: "after reconnect" });
    expect(await again.next()).toEqual({ type: "ack", id: t.id, status: "succeeded" });
    again.close();
  });

  it("closes an older socket of the same agent when it connects again", async () => {
    const pool = freshPool("ws");
    await register(pool, "a1");
    const first = await connect(pool, "a1");
    await first.next();
    const second = await connect(pool, "a1");
    await second.next();
    await new Promise((r) => setTimeout(r, 200));
    expect(first.closed).toBe(true);
    expect(second.closed).toBe(false);
    second.close();
  });

  it("refuses a request that is not an upgrade, an unknown agent, and a missing credential", async () => {
    const pool = freshPool("ws");
    await register(pool, "a1");
    expectError(await api("GET", `/v1/pools/${pool}/agents/a1/connect`), 400, "invalid_request");
    const ghost = await exports.default.fetch(new Request(`https://mesh.test/v1/pools/${pool}/agents/ghost/connect?token=${ADMIN_KEY}`, { headers: { upgrade: "websocket" } }));
    expect(ghost.status).toBe(404);
    const anonymous = await exports.default.fetch(new Request(`https://mesh.test/v1/pools/${pool}/agents/a1/connect`, { headers: { upgrade: "websocket" } }));
    expect(anonymous.status).toBe(401);
    // ?token= is accepted on upgrades only, never on plain requests.
    expectError(await api("GET", `/v1/pools/${pool}?token=${ADMIN_KEY}`, undefined, { token: null }), 401, "unauthorized");
  });

  it("spreads tasks over connected agents by the pool's strategy", async () => {
    const pool = freshPool("ws");
    await register(pool, "a", { maxConcurrency: 10 });
    await register(pool, "b", { maxConcurrency: 10 });
    const a = await connect(pool, "a");
    const b = await connect(pool, "b");
    await a.next();
    await b.next();
    a.send({ type: "ready", credits: 10 });
    b.send({ type: "ready", credits: 10 });
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 4; i++) await submit(pool);
    const got = { a: (await a.drain(300)).length, b: (await b.drain(0)).length };
    // least_connections (the default): one at a time, each to the agent holding fewer.
    expect(got).toEqual({ a: 2, b: 2 });
    a.close();
    b.close();
  });
});

describe("a socket's rights and wake-ups", () => {
  it("pushes again as soon as a half-open breaker lets a task through, without waiting for a heartbeat", async () => {
    const pool = freshPool("wsb");
    const clock = await new PoolClock(pool).install();
    await api("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 3_600_000, breaker: { failureThreshold: 1, cooldownMs: 5_000 } });
    await register(pool, "a1", { maxConcurrency: 5 });
    const ws = await connect(pool, "a1");
    await ws.next();
    ws.send({ type: "ready", credits: 5 });
    await submit(pool, { maxAttempts: 5 });
    const first = (await ws.next()).task;
    ws.send({ type: "fail", id: first.id, leaseToken: first.leaseToken, error: { message: "x" } });
    expect(await ws.next()).toMatchObject({ type: "ack", status: "waiting" });
    await submit(pool);
    expect(await ws.drain()).toEqual([]);
    await clock.advance(5_000);
    const probe = await ws.next();
    expect(probe.type).toBe("task");
    ws.close();
  });

  it("closes a socket whose token expired, and the socket of a deleted agent", async () => {
    const pool = freshPool("wsx");
    await register(pool, "a1");
    const short = await issueToken(keyringFromEnv(env), { keyId: "AAAAAAAAAAAA", tenant: "default", roles: ["operator"], pool: null }, 1);
    await api("POST", `/v1/pools/${pool}/agents`, { agentId: "a2" });
    const ws = await connect(pool, "a2", short.token);
    expect((await ws.next()).type).toBe("hello");
    await new Promise((r) => setTimeout(r, Math.max(0, short.expiresAt - Date.now()) + 50));
    ws.send({ type: "ready", credits: 1 });
    await ws.drain(200);
    expect(ws.closeCode).toBe(4001);
    const other = await connect(pool, "a1");
    await other.next();
    expect((await api("DELETE", `/v1/pools/${pool}/agents/a1`)).status).toBe(200);
    await other.drain(200);
    expect(other.closeCode).toBe(4002);
  });

  it("closes the sockets opened with a revoked API key or a token of it, in its pool or every pool of its tenant", async () => {
    const pool = freshPool("wsr");
    const other = freshPool("wsr");
    const agentKey = await createKey("revoke-ws", ["agent"], pool);
    const operatorKey = await createKey("revoke-ws", ["operator"]);
    const keeper = await createKey("revoke-ws", ["operator"]);
    expect((await as(agentKey.key, "POST", `/v1/pools/${pool}/agents`, { agentId: "k1" })).status).toBe(201);
    expect((await as(agentKey.key, "POST", `/v1/pools/${pool}/agents`, { agentId: "k2" })).status).toBe(201);
    expect((await as(operatorKey.key, "POST", `/v1/pools/${other}/agents`, { agentId: "o1" })).status).toBe(201);
    expect((await as(keeper.key, "POST", `/v1/pools/${other}/agents`, { agentId: "o2" })).status).toBe(201);
    const issued = await api("POST", "/v1/auth/token", { apiKey: agentKey.key }, { token: null });
    expect(issued.status).toBe(200);
    const token = issued.body.token as string;
    const byKey = await connect(pool, "k1", agentKey.key);
    const byToken = await connect(pool, "k2", token);
    const byOperator = await connect(other, "o1", operatorKey.key);
    const kept = await connect(other, "o2", keeper.key);
    for (const ws of [byKey, byToken, byOperator, kept]) expect((await ws.next()).type).toBe("hello");
    // A pool-bound key: its pool only.
    expect((await api("DELETE", `/v1/tenants/revoke-ws/keys/${agentKey.id}`)).status).toBe(200);
    await byKey.drain(200);
    await byToken.drain(0);
    expect([byKey.closeCode, byToken.closeCode]).toEqual([4003, 4003]);
    // A key of the tenant: every pool the tenant uses; another key's socket stays open.
    expect((await api("DELETE", `/v1/tenants/revoke-ws/keys/${operatorKey.id}`)).status).toBe(200);
    await byOperator.drain(200);
    expect(byOperator.closeCode).toBe(4003);
    expect(kept.closed).toBe(false);
    kept.send({ type: "ready", credits: 1 });
    await submit(other);
    expect((await kept.next()).type).toBe("task");
    kept.close();
  });

  it("pushes nothing to a socket without a verified client certificate once the pool requires one", async () => {
    const pool = freshPool("wsc");
    await register(pool, "a1");
    const ws = await connect(pool, "a1");
    await ws.next();
    ws.send({ type: "ready", credits: 2 });
    await ws.drain(100);
    await api("PUT", `/v1/pools/${pool}/config`, { requireClientCert: true });
    await submit(pool);
    expect(await ws.drain()).toEqual([]);
    ws.close();
  });

  it("records pushes and settlements over the socket in the tenant's audit log", async () => {
    const pool = freshPool("wsa");
    await register(pool, "a1", { maxConcurrency: 3 });
    const ws = await connect(pool, "a1");
    await ws.next();
    const t = await submit(pool);
    ws.send({ type: "ready", credits: 1 });
    const task = (await ws.next()).task;
    ws.send({ type: "complete", id: task.id, leaseToken: task.leaseToken });
    await ws.next();
    await new Promise((r) => setTimeout(r, 400));
    const mine = (await auditRecords()).filter((r) => r.target.startsWith("a1 (websocket)") && r.at >= t.createdAt);
    expect(mine.map((r) => [r.action, r.actor, r.outcome])).toEqual([
      ["task.lease", "admin-key", "success"],
      ["task.settle", "admin-key", "success"],
    ]);
    expect(mine[0].target).toMatch(/^a1 \(websocket\): 1 tasks sha256:[0-9a-f]{64}$/);
    ws.close();
  });

  it("makes the frames of one socket that succeeded at the same thing within a moment one audit record", async () => {
    const pool = freshPool("wsa");
    const agent = `co-${pool}`;
    await register(pool, agent, { maxConcurrency: 3 });
    const ws = await connect(pool, agent);
    await ws.next();
    const [t1, t2] = [await submit(pool), await submit(pool)];
    ws.send({ type: "ready", credits: 2 });
    const [p1, p2] = [(await ws.next()).task, (await ws.next()).task];
    expect([p1.id, p2.id]).toEqual([t1.id, t2.id]);
    // Two frames that succeed and one that is refused (a stale lease), back to back.
    ws.send({ type: "complete", id: p1.id, leaseToken: p1.leaseToken });
    ws.send({ type: "complete", id: p2.id, leaseToken: p2.leaseToken });
    ws.send({ type: "complete", id: p1.id, leaseToken: "not-the-lease" });
    for (let i = 0; i < 3; i++) await ws.next();
    await new Promise((r) => setTimeout(r, 400));
    const records = (await auditRecords()).filter((r) => r.target.startsWith(`${agent} (websocket)`));
    const sha = async (ids: string[]) =>
      [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(ids.join("\n"))))].map((b) => b.toString(16).padStart(2, "0")).join("");
    expect(records.filter((r) => r.action === "task.settle").map((r) => [r.target, r.outcome])).toEqual([
      [`${agent} (websocket): 2 tasks sha256:${await sha([t1.id, t2.id])}`, "success"],
      [`${agent} (websocket): 1 tasks sha256:${await sha([t1.id])}`, "1 refused"],
    ]);
    expect(records.filter((r) => r.action === "task.lease").map((r) => r.target)).toEqual([`${agent} (websocket): 2 tasks sha256:${await sha([t1.id, t2.id])}`]);
    ws.close();
  });
});
