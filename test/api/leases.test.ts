import { describe, expect, it } from "vitest";
import { api, expectError, freshPool, lease, PoolClock, register, submit } from "../helpers";

describe("leasing", () => {
  it("hands out a leased task with attempt, token and expiry, and counts the attempt", async () => {
    const pool = freshPool();
    const t = await submit(pool, { timeoutMs: 5000 });
    await register(pool, "a1");
    const [l] = await lease(pool, "a1");
    expect(l).toMatchObject({ id: t.id, status: "leased", attempts: 1, attempt: 1, agentId: "a1" });
    expect(typeof l.leaseToken).toBe("string");
    const expires = Date.parse(l.leaseExpiresAt) - Date.parse(l.updatedAt);
    expect(expires).toBe(5000);
    const got = (await api("GET", `/v1/tasks/${t.id}`)).body;
    expect(got.leaseToken).toBeUndefined();
    expect(got.leaseExpiresAt).toBe(l.leaseExpiresAt);
    expect((await api("GET", `/v1/pools/${pool}/agents/a1`)).body.inFlight).toBe(1);
  });

  it("answers an empty list when there is nothing to do, and 404 for an unknown agent or pool", async () => {
    const pool = freshPool();
    await register(pool, "a1");
    expect(await lease(pool, "a1", 5)).toEqual([]);
    expectError(await api("POST", `/v1/pools/${pool}/agents/ghost/lease`, {}), 404, "not_found");
    expectError(await api("POST", `/v1/pools/${freshPool()}/agents/a1/lease`, {}), 404, "not_found");
    expectError(await api("POST", `/v1/pools/${pool}/agents/a1/lease`, { max: 101 }), 400, "invalid_request");
    expectError(await api("POST", `/v1/pools/${pool}/agents/a1/lease`, { waitMs: 30001 }), 400, "invalid_request");
  });

  it("never exceeds the agent's free concurrency", async () => {
    const pool = freshPool();
    for (let i = 0; i < 5; i++) await submit(pool);
    await register(pool, "a1", { maxConcurrency: 2 });
    expect(await lease(pool, "a1", 10)).toHaveLength(2);
    expect(await lease(pool, "a1", 10)).toHaveLength(0);
  });

  it("matches requirements against capabilities and resources", async () => {
    const pool = freshPool();
    const gpuTask = await submit(pool, { requires: { capabilities: ["onnx"], gpu: 1 } });
    const bigTask = await submit(pool, { requires: { cpu: 4, memoryMb: 8192 } });
    const plain = await submit(pool);
    await register(pool, "cpu-small", { capabilities: ["onnx"], resources: { cpu: 2, memoryMb: 4096 } });
    await register(pool, "gpu", { capabilities: ["onnx", "cuda"], resources: { cpu: 8, memoryMb: 16384, gpu: 1 } });
    expect((await lease(pool, "cpu-small", 10)).map((t) => t.id)).toEqual([plain.id]);
    expect((await lease(pool, "gpu", 10)).map((t) => t.id).sort()).toEqual([gpuTask.id, bigTask.id].sort());
  });

  it("only leases to running agents", async () => {
    const pool = freshPool();
    await submit(pool);
    await register(pool, "a1");
    await api("PATCH", `/v1/pools/${pool}/agents/a1`, { state: "paused" });
    expect(await lease(pool, "a1")).toEqual([]);
    await api("PATCH", `/v1/pools/${pool}/agents/a1`, { state: "running" });
    expect(await lease(pool, "a1")).toHaveLength(1);
  });

  it("long-polls: a waiting agent gets a task as soon as one is submitted", async () => {
    const pool = freshPool();
    await register(pool, "a1");
    const started = Date.now();
    const waiting = lease(pool, "a1", 1, 10_000);
    await new Promise((r) => setTimeout(r, 100));
    const t = await submit(pool);
    const got = await waiting;
    expect(got.map((x) => x.id)).toEqual([t.id]);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("long-polls: answers empty after waitMs", async () => {
    const pool = freshPool();
    await register(pool, "a1");
    const started = Date.now();
    expect(await lease(pool, "a1", 1, 300)).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it("gives each task to one of several waiting agents only", async () => {
    const pool = freshPool();
    for (const id of ["a", "b", "c"]) await register(pool, id);
    const waits = ["a", "b", "c"].map((id) => lease(pool, id, 1, 1000));
    await new Promise((r) => setTimeout(r, 100));
    await submit(pool);
    await submit(pool);
    const got = (await Promise.all(waits)).flat();
    expect(got).toHaveLength(2);
    expect(new Set(got.map((t) => t.id)).size).toBe(2);
  });
});

describe("complete, fail, extend", () => {
  it("complete stores the result; a stale or wrong token gets 409 lease_lost and changes nothing", async () => {
    const pool = freshPool();
    const t = await submit(pool);
    await register(pool, "a1");
    const [l] = await lease(pool, "a1");
    expectError(await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: "forged", result: 1 }), 409, "lease_lost");
    expect((await api("GET", `/v1/tasks/${t.id}`)).body.status).toBe("leased");
    const done = await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken, result: { words: 3 } });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: "succeeded", result: { words: 3 }, attempts: 1 });
    expect(done.body.finishedAt).not.toBeNull();
    const twice = await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken, result: { words: 4 } });
    expectError(twice, 409, "lease_lost");
    expect((await api("GET", `/v1/tasks/${t.id}`)).body.result).toEqual({ words: 3 });
    expectError(await api("POST", `/v1/tasks/${t.id}/complete`, {}), 400, "invalid_request");
    expectError(await api("POST", `/v1/tasks/${pool}.0.AAAAAAAAAAAAAAAAAAAAAA/complete`, { leaseToken: "x" }), 404, "not_found");
  });

  it("fail waits out a backoff, then the task is retried; the last attempt's failure makes it dead", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool, { maxAttempts: 2 });
    await register(pool, "a1");
    const [l1] = await lease(pool, "a1");
    const failed = await api("POST", `/v1/tasks/${t.id}/fail`, { leaseToken: l1.leaseToken, error: { message: "boom", code: "E1" } });
    expect(failed.status).toBe(200);
    expect(failed.body.status).toBe("waiting");
    expect(failed.body.error).toMatchObject({ message: "boom", code: "E1", attempt: 1 });
    const delay = Date.parse(failed.body.runAfter) - clock.now;
    expect(delay).toBeGreaterThanOrEqual(500);
    expect(delay).toBeLessThanOrEqual(1000);
    expect(await lease(pool, "a1")).toEqual([]);
    await clock.advance(1000);
    const [l2] = await lease(pool, "a1");
    expect(l2.attempt).toBe(2);
    expectError(await api("POST", `/v1/tasks/${t.id}/fail`, { leaseToken: l1.leaseToken }), 409, "lease_lost");
    const dead = await api("POST", `/v1/tasks/${t.id}/fail`, { leaseToken: l2.leaseToken, error: { message: "again" } });
    expect(dead.body).toMatchObject({ status: "dead", attempts: 2, error: { message: "again", attempt: 2 } });
  });

  it("fail with retryable false goes to the dead letter queue at once", async () => {
    const pool = freshPool();
    const t = await submit(pool, { maxAttempts: 5 });
    await register(pool, "a1");
    const [l] = await lease(pool, "a1");
    const res = await api("POST", `/v1/tasks/${t.id}/fail`, { leaseToken: l.leaseToken, error: { message: "bad input" }, retryable: false });
    expect(res.body.status).toBe("dead");
    const dlq = await api("GET", `/v1/pools/${pool}/tasks?status=dead`);
    expect(dlq.body.tasks.map((x: any) => x.id)).toEqual([t.id]);
  });

  it("extend moves the expiry to now + extendMs (default timeoutMs); a stale token is refused", async () => {
    const pool = freshPool();
    // Time moves far here; this test is not about heartbeats, so the agents need not send any.
    await api("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 3_600_000 });
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool, { timeoutMs: 10_000 });
    await register(pool, "a1");
    const [l] = await lease(pool, "a1");
    await clock.advance(8_000);
    const ext = await api("POST", `/v1/tasks/${t.id}/extend`, { leaseToken: l.leaseToken, extendMs: 20_000 });
    expect(ext.status).toBe(200);
    expect(Date.parse(ext.body.leaseExpiresAt)).toBe(clock.now + 20_000);
    await clock.advance(15_000);
    expect((await api("GET", `/v1/tasks/${t.id}`)).body.status).toBe("leased");
    const def = await api("POST", `/v1/tasks/${t.id}/extend`, { leaseToken: l.leaseToken });
    expect(Date.parse(def.body.leaseExpiresAt)).toBe(clock.now + 10_000);
    expectError(await api("POST", `/v1/tasks/${t.id}/extend`, { leaseToken: "old" }), 409, "lease_lost");
    expectError(await api("POST", `/v1/tasks/${t.id}/extend`, { leaseToken: l.leaseToken, extendMs: 10 }), 400, "invalid_request");
  });
});

describe("agents", () => {
  it("register goes to running and answers the heartbeat interval", async () => {
    const pool = freshPool();
    const res = await api("POST", `/v1/pools/${pool}/agents`, {
      agentId: "gpu-1",
      capabilities: ["onnx", "gpu"],
      resources: { cpu: 8, memoryMb: 32768, gpu: 1 },
      maxConcurrency: 4,
      metadata: { version: "1.0.0", region: "weur" },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      agentId: "gpu-1",
      pool,
      state: "running",
      capabilities: ["gpu", "onnx"],
      resources: { cpu: 8, memoryMb: 32768, gpu: 1 },
      maxConcurrency: 4,
      inFlight: 0,
      load: { currentLoad: 0, queueDepth: 0, avgLatencyMs: 0 },
      metadata: { version: "1.0.0", region: "weur" },
      breaker: "closed",
      heartbeatIntervalMs: 5000,
    });
    const generated = await api("POST", `/v1/pools/${pool}/agents`, {});
    expect(generated.status).toBe(201);
    expect(generated.body.agentId).toMatch(/^agent-/);
    const list = await api("GET", `/v1/pools/${pool}/agents`);
    expect(list.body.agents.map((a: any) => a.agentId).sort()).toEqual(["gpu-1", generated.body.agentId].sort());
    expectError(await api("GET", `/v1/pools/${pool}/agents/nobody`), 404, "not_found");
    expectError(await api("GET", `/v1/pools/${freshPool()}/agents`), 404, "not_found");
    expectError(await api("POST", `/v1/pools/${pool}/agents`, { maxConcurrency: 0 }), 400, "invalid_request");
    expectError(await api("POST", `/v1/pools/BAD/agents`, {}), 404, "not_found");
  });

  it("heartbeat records the load", async () => {
    const pool = freshPool();
    await register(pool, "a1");
    const res = await api("POST", `/v1/pools/${pool}/agents/a1/heartbeat`, { load: { currentLoad: 0.5, queueDepth: 3, avgLatencyMs: 120 } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ load: { currentLoad: 0.5, queueDepth: 3, avgLatencyMs: 120 }, heartbeatIntervalMs: 5000 });
    expectError(await api("POST", `/v1/pools/${pool}/agents/a1/heartbeat`, { load: { currentLoad: -1 } }), 400, "invalid_request");
  });

  it("PATCH allows the lifecycle's pairs and refuses the others with 409 invalid_transition", async () => {
    const pool = freshPool();
    await register(pool, "a1");
    const to = (state: string) => api("PATCH", `/v1/pools/${pool}/agents/a1`, { state });
    expect((await to("paused")).body.state).toBe("paused");
    expectError(await to("scaling"), 409, "invalid_transition");
    expectError(await to("recovering"), 409, "invalid_transition");
    expect((await to("running")).body.state).toBe("running");
    expect((await to("scaling")).body.state).toBe("scaling");
    expect((await to("running")).body.state).toBe("running");
    expectError(await to("pending"), 409, "invalid_transition");
    expectError(await to("sleeping"), 400, "invalid_request");
    expect((await to("running")).status).toBe(200);
  });

  it("failed gives leases back at once, each counted as an attempt", async () => {
    const pool = freshPool();
    const t = await submit(pool);
    await register(pool, "a1");
    await register(pool, "a2");
    const [l] = await lease(pool, "a1");
    const res = await api("PATCH", `/v1/pools/${pool}/agents/a1`, { state: "failed" });
    expect(res.body).toMatchObject({ state: "failed", inFlight: 0 });
    const again = await lease(pool, "a2");
    expect(again.map((x) => x.id)).toEqual([t.id]);
    expect(again[0].attempt).toBe(2);
    expectError(await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken }), 409, "lease_lost");
    expectError(await api("PATCH", `/v1/pools/${pool}/agents/a1`, { state: "running" }), 409, "invalid_transition");
    expect((await api("PATCH", `/v1/pools/${pool}/agents/a1`, { state: "recovering" })).body.state).toBe("recovering");
  });

  it("terminating takes no new work and removes the agent once nothing is in flight", async () => {
    const pool = freshPool();
    const t = await submit(pool);
    await submit(pool);
    await register(pool, "a1");
    const [l] = await lease(pool, "a1");
    const res = await api("PATCH", `/v1/pools/${pool}/agents/a1`, { state: "terminating" });
    expect(res.body.state).toBe("terminating");
    expect(await lease(pool, "a1")).toEqual([]);
    await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken });
    expectError(await api("GET", `/v1/pools/${pool}/agents/a1`), 404, "not_found");
    await register(pool, "idle");
    // The answer is the agent as the change left it, though an idle terminating agent is gone right after.
    const idle = await api("PATCH", `/v1/pools/${pool}/agents/idle`, { state: "terminating" });
    expect(idle.status).toBe(200);
    expect(idle.body).toMatchObject({ agentId: "idle", state: "terminating" });
    expectError(await api("GET", `/v1/pools/${pool}/agents/idle`), 404, "not_found");
  });

  it("DELETE requeues its leased tasks at once; with attempts used up they are dead", async () => {
    const pool = freshPool();
    const again = await submit(pool, { maxAttempts: 3 });
    const last = await submit(pool, { maxAttempts: 1 });
    await register(pool, "a1");
    await lease(pool, "a1", 2);
    const res = await api("DELETE", `/v1/pools/${pool}/agents/a1`);
    expect(res.status).toBe(200);
    expectError(await api("GET", `/v1/pools/${pool}/agents/a1`), 404, "not_found");
    expect((await api("GET", `/v1/tasks/${again.id}`)).body).toMatchObject({ status: "queued", attempts: 1 });
    expect((await api("GET", `/v1/tasks/${last.id}`)).body).toMatchObject({ status: "dead", attempts: 1 });
    expectError(await api("DELETE", `/v1/pools/${pool}/agents/a1`), 404, "not_found");
  });

  it("re-registering an id keeps its leases", async () => {
    const pool = freshPool();
    const t = await submit(pool);
    await register(pool, "a1");
    const [l] = await lease(pool, "a1");
    const again = await register(pool, "a1", { maxConcurrency: 3 });
    expect(again).toMatchObject({ maxConcurrency: 3, inFlight: 1 });
    expect((await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken })).status).toBe(200);
  });
});

describe("fixes found by review", () => {
  it("a waiting lease call wakes when the agent frees a slot", async () => {
    const pool = freshPool();
    await register(pool, "a1", { maxConcurrency: 1 });
    const first = await submit(pool);
    const second = await submit(pool);
    const [l] = await lease(pool, "a1");
    expect(l.id).toBe(first.id);
    const started = Date.now();
    const waiting = lease(pool, "a1", 1, 5000);
    await new Promise((r) => setTimeout(r, 50));
    await api("POST", `/v1/tasks/${first.id}/complete`, { leaseToken: l.leaseToken });
    expect((await waiting).map((t) => t.id)).toEqual([second.id]);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("a waiting lease call wakes when its paused agent runs again", async () => {
    const pool = freshPool();
    await register(pool, "a1");
    const t = await submit(pool);
    await api("PATCH", `/v1/pools/${pool}/agents/a1`, { state: "paused" });
    const waiting = lease(pool, "a1", 1, 5000);
    await new Promise((r) => setTimeout(r, 50));
    await api("PATCH", `/v1/pools/${pool}/agents/a1`, { state: "running" });
    expect((await waiting).map((x) => x.id)).toEqual([t.id]);
  });

  it("duplicate ids in dependsOn count once", async () => {
    const pool = freshPool();
    const a = await submit(pool);
    const b = await submit(pool, { dependsOn: [a.id, a.id] });
    expect(b.dependsOn).toEqual([a.id]);
    await register(pool, "w");
    const [l] = await lease(pool, "w");
    await api("POST", `/v1/tasks/${a.id}/complete`, { leaseToken: l.leaseToken });
    expect((await api("GET", `/v1/tasks/${b.id}`)).body.status).toBe("queued");
  });

  it("a success clears the error of an earlier attempt", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool);
    await register(pool, "w");
    const [l1] = await lease(pool, "w");
    await api("POST", `/v1/tasks/${t.id}/fail`, { leaseToken: l1.leaseToken, error: { message: "flaky" } });
    await clock.advance(1000);
    const [l2] = await lease(pool, "w");
    const done = await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l2.leaseToken });
    expect(done.body).toMatchObject({ status: "succeeded", error: null });
  });

  it("a lease past its expiry is lost even before the alarm runs", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool, { timeoutMs: 1000 });
    await register(pool, "w");
    const [l] = await lease(pool, "w");
    clock.now += 1000;
    await clock.install();
    const res = await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken });
    expectError(res, 409, "lease_lost");
    expectError(await api("POST", `/v1/tasks/${t.id}/extend`, { leaseToken: l.leaseToken }), 409, "lease_lost");
    expect((await api("GET", `/v1/tasks/${t.id}`)).body.status).toBe("leased");
  });
});

describe("POST /v1/tasks/settle (batch of completions, failures and extensions)", () => {
  it("applies each item in order and reports refused ones without stopping the others", async () => {
    const pool = freshPool();
    const other = freshPool();
    const clock = await new PoolClock(pool).install();
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await submit(pool, { maxAttempts: 2 })).id);
    const foreign = await submit(other);
    await register(pool, "w");
    await register(other, "w");
    const leased = await lease(pool, "w", 4);
    const [lf] = await lease(other, "w");
    const token = Object.fromEntries(leased.map((t) => [t.id, t.leaseToken]));
    const res = await api("POST", "/v1/tasks/settle", {
      items: [
        { action: "complete", id: ids[0], leaseToken: token[ids[0]], result: { n: 0 } },
        { action: "fail", id: ids[1], leaseToken: token[ids[1]], error: { message: "nope" } },
        { action: "fail", id: ids[2], leaseToken: token[ids[2]], retryable: false },
        { action: "extend", id: ids[3], leaseToken: token[ids[3]], extendMs: 60_000 },
        { action: "complete", id: ids[0], leaseToken: token[ids[0]] },
        { action: "complete", id: ids[3], leaseToken: "stale" },
        { action: "complete", id: "garbage", leaseToken: "x" },
        { action: "complete", id: foreign.id, leaseToken: lf.leaseToken, result: "other pool" },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      { id: ids[0], status: "succeeded" },
      { id: ids[1], status: "waiting" },
      { id: ids[2], status: "dead" },
      { id: ids[3], status: "leased", leaseExpiresAt: new Date(clock.now + 60_000).toISOString() },
      { id: ids[0], error: { code: "lease_lost", message: expect.any(String) } },
      { id: ids[3], error: { code: "lease_lost", message: expect.any(String) } },
      { id: "garbage", error: { code: "not_found", message: expect.any(String) } },
      { id: foreign.id, status: "succeeded" },
    ]);
    expect((await api("GET", `/v1/tasks/${ids[0]}`)).body.result).toEqual({ n: 0 });
    expect((await api("GET", `/v1/tasks/${foreign.id}`)).body.result).toBe("other pool");
  });

  it("rejects a malformed batch as a whole", async () => {
    expectError(await api("POST", "/v1/tasks/settle", { items: [] }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks/settle", { items: [{ action: "explode", id: "a", leaseToken: "b" }] }), 400, "invalid_request");
    const many = Array.from({ length: 1001 }, () => ({ action: "complete", id: "a", leaseToken: "b" }));
    expectError(await api("POST", "/v1/tasks/settle", { items: many }), 400, "invalid_request");
  });
});
