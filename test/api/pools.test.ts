import { describe, expect, it } from "vitest";
import { api, expectError, freshPool, lease, register, submit } from "../helpers";

describe("GET /v1/pools and /v1/pools/:pool", () => {
  it("list pools from their first write with counts by status and state", async () => {
    const pool = freshPool();
    await submit(pool);
    await submit(pool);
    await register(pool, "a1");
    await lease(pool, "a1");
    const res = await api("GET", "/v1/pools");
    expect(res.status).toBe(200);
    const entry = res.body.pools.find((p: any) => p.pool === pool);
    expect(entry.queue).toEqual({ waiting: 0, queued: 1, leased: 1, succeeded: 0, dead: 0, cancelled: 0 });
    expect(entry.agents).toMatchObject({ running: 1, paused: 0 });
    const configOnly = freshPool();
    await api("PUT", `/v1/pools/${configOnly}/config`, { strategy: "latency_based" });
    expect((await api("GET", "/v1/pools")).body.pools.map((p: any) => p.pool)).toContain(configOnly);
  });

  it("answers stats with throughput and submit-to-success latency measured by the coordinator", async () => {
    const pool = freshPool();
    await register(pool, "a1", { maxConcurrency: 20 });
    for (let i = 0; i < 10; i++) await submit(pool);
    for (const t of await lease(pool, "a1", 10)) await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: t.leaseToken });
    const res = await api("GET", `/v1/pools/${pool}`);
    expect(res.status).toBe(200);
    expect(res.body.pool).toBe(pool);
    expect(res.body.queue.succeeded).toBe(10);
    expect(res.body.throughput).toMatchObject({ windowSeconds: 60 });
    expect(res.body.throughput.submittedPerSec).toBeCloseTo(10 / 60, 2);
    expect(res.body.throughput.succeededPerSec).toBeCloseTo(10 / 60, 2);
    expect(res.body.latencyMs.samples).toBe(10);
    expect(res.body.latencyMs.p50).toBeGreaterThanOrEqual(0);
    expect(res.body.latencyMs.p99).toBeGreaterThanOrEqual(res.body.latencyMs.p50);
  });

  it("answer 404 for a pool that never existed or whose name does not parse", async () => {
    expectError(await api("GET", `/v1/pools/${freshPool()}`), 404, "not_found");
    expectError(await api("GET", "/v1/pools/Not_A_Pool"), 404, "not_found");
    expectError(await api("GET", `/v1/pools/${"x".repeat(64)}`), 404, "not_found");
  });
});

describe("GET /v1/pools/:pool/tasks", () => {
  it("pages through tasks oldest first, optionally by status", async () => {
    const pool = freshPool();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await submit(pool)).id);
    await api("POST", `/v1/tasks/${ids[2]}/cancel`);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: any = await api("GET", `/v1/pools/${pool}/tasks?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.tasks.map((t: any) => t.id));
      cursor = res.body.cursor;
      pages++;
    } while (cursor !== null);
    expect(seen).toEqual(ids);
    expect(pages).toBe(3);
    const cancelled = await api("GET", `/v1/pools/${pool}/tasks?status=cancelled`);
    expect(cancelled.body).toEqual({ tasks: [expect.objectContaining({ id: ids[2], status: "cancelled" })], cursor: null });
    expectError(await api("GET", `/v1/pools/${pool}/tasks?status=lost`), 400, "invalid_request");
    expectError(await api("GET", `/v1/pools/${pool}/tasks?limit=0`), 400, "invalid_request");
    expectError(await api("GET", `/v1/pools/${pool}/tasks?limit=1001`), 400, "invalid_request");
    expectError(await api("GET", `/v1/pools/${pool}/tasks?cursor=zzz!`), 400, "invalid_request");
  });
});

describe("POST /v1/pools/:pool/dlq/redrive", () => {
  async function deadTasks(pool: string, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await submit(pool, { maxAttempts: 1 })).id);
    await register(pool, "killer", { maxConcurrency: 100 });
    for (const t of await lease(pool, "killer", n)) {
      await api("POST", `/v1/tasks/${t.id}/fail`, { leaseToken: t.leaseToken, error: { message: "x" } });
    }
    return ids;
  }

  it("queues the named dead tasks again with attempts reset", async () => {
    const pool = freshPool();
    const [a, b, c] = await deadTasks(pool, 3);
    const alive = await submit(pool);
    const res = await api("POST", `/v1/pools/${pool}/dlq/redrive`, { ids: [a, b, alive.id] });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ redriven: 2, skipped: [alive.id] });
    expect((await api("GET", `/v1/tasks/${a}`)).body).toMatchObject({ status: "queued", attempts: 0, error: null });
    expect((await api("GET", `/v1/tasks/${c}`)).body.status).toBe("dead");
  });

  it("redrives a task named twice once, and counts it once (a case the fuzzer found)", async () => {
    const pool = freshPool();
    const [a] = await deadTasks(pool, 1);
    const res = await api("POST", `/v1/pools/${pool}/dlq/redrive`, { ids: [a, a] });
    expect(res.body).toEqual({ redriven: 1, skipped: [] });
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue).toMatchObject({ queued: 1, dead: 0 });
  });

  it("redrives every dead task with {} and dependents wait for their redriven dependency", async () => {
    const pool = freshPool();
    const [a] = await deadTasks(pool, 1);
    const dependent = await submit(pool, { dependsOn: [a] });
    expect(dependent.status).toBe("dead");
    const res = await api("POST", `/v1/pools/${pool}/dlq/redrive`, {});
    expect(res.body.redriven).toBe(2);
    expect((await api("GET", `/v1/tasks/${a}`)).body.status).toBe("queued");
    expect((await api("GET", `/v1/tasks/${dependent.id}`)).body.status).toBe("waiting");
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue.dead).toBe(0);
  });

  it("skips a dependent whose dependency is still dead", async () => {
    const pool = freshPool();
    const [a] = await deadTasks(pool, 1);
    const dependent = await submit(pool, { dependsOn: [a] });
    const res = await api("POST", `/v1/pools/${pool}/dlq/redrive`, { ids: [dependent.id] });
    expect(res.body).toEqual({ redriven: 0, skipped: [dependent.id] });
  });

  it("validates ids and answers 404 for an unknown pool", async () => {
    expectError(await api("POST", `/v1/pools/${freshPool()}/dlq/redrive`, {}), 404, "not_found");
    const pool = freshPool();
    await submit(pool);
    expectError(await api("POST", `/v1/pools/${pool}/dlq/redrive`, { ids: "all" }), 400, "invalid_request");
    expectError(await api("POST", `/v1/pools/${pool}/dlq/redrive`, { ids: [] }), 400, "invalid_request");
  });
});

describe("pool config", () => {
  it("has the documented defaults and merges a partial update, nested breaker too", async () => {
    const pool = freshPool();
    expectError(await api("GET", `/v1/pools/${pool}/config`), 404, "not_found");
    await submit(pool);
    const defaults = await api("GET", `/v1/pools/${pool}/config`);
    expect(defaults.body).toEqual({
      strategy: "least_connections",
      heartbeatIntervalMs: 5000,
      missedHeartbeats: 3,
      failedAgentTtlMs: 300000,
      breaker: { failureThreshold: 5, cooldownMs: 30000 },
      retentionMs: 604800000,
      maxUnfinishedPerTenant: 1000000,
      requireClientCert: false,
      scheduling: "fair",
      gossip: { intervalMs: 1000, fanout: 2, topology: "auto" },
      cache: { types: [], ttlMs: { l1: 3_600_000, l2: 86_400_000, l3: 604_800_000 }, semantic: { types: [], index: null, threshold: 0.95, model: null } },
      concurrency: { default: null, limits: {} },
      rateLimits: {},
    });
    const put = await api("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 2000, breaker: { cooldownMs: 10000 }, gossip: { fanout: 3 } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ heartbeatIntervalMs: 2000, breaker: { failureThreshold: 5, cooldownMs: 10000 }, gossip: { intervalMs: 1000, fanout: 3, topology: "auto" } });
    expect((await api("GET", `/v1/pools/${pool}/config`)).body).toEqual(put.body);
    expect((await register(pool, "a1")).heartbeatIntervalMs).toBe(2000);
  });

  it("refuses bad values with 400 and keeps the config", async () => {
    const pool = freshPool();
    await submit(pool);
    for (const bad of [{ strategy: "random" }, { missedHeartbeats: 0 }, { breaker: { failureThreshold: -1 } }, { heartbeatIntervalMs: "fast" }, { extra: 1 }]) {
      expectError(await api("PUT", `/v1/pools/${pool}/config`, bad), 400, "invalid_request");
    }
    expect((await api("GET", `/v1/pools/${pool}/config`)).body.strategy).toBe("least_connections");
  });
});

describe("redrive of a large dead letter queue", () => {
  it("moves every dead task in chunks, reporting each skipped task once", async () => {
    const pool = freshPool();
    // Failing 2,000 tasks on purpose must not open the agent's circuit breaker.
    await api("PUT", `/v1/pools/${pool}/config`, { breaker: { failureThreshold: 1_000_000 } });
    const tasks = Array.from({ length: 1000 }, () => ({ type: `${pool}.x`, maxAttempts: 1 }));
    const root = await submit(pool, { maxAttempts: 1 });
    await api("POST", `/v1/tasks/${root.id}/cancel`);
    const blocked = await submit(pool, { dependsOn: [root.id] });
    expect(blocked.status).toBe("dead");
    for (let i = 0; i < 2; i++) await api("POST", "/v1/tasks/batch", { tasks });
    await register(pool, "k", { maxConcurrency: 1000 });
    for (let round = 0; round < 20; round++) {
      const leased = await lease(pool, "k", 100);
      if (leased.length === 0) break;
      await Promise.all(leased.map((t) => api("POST", `/v1/tasks/${t.id}/fail`, { leaseToken: t.leaseToken, retryable: false })));
    }
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue.dead).toBe(2001);
    const res = await api("POST", `/v1/pools/${pool}/dlq/redrive`, {});
    expect(res.body).toEqual({ redriven: 2000, skipped: [blocked.id] });
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue).toMatchObject({ dead: 1, queued: 2000 });
  });
});
