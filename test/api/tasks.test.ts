import { describe, expect, it } from "vitest";
import { api, expectError, freshPool, lease, register, submit } from "../helpers";

describe("POST /v1/tasks", () => {
  it("creates a queued task with the documented defaults", async () => {
    const pool = freshPool();
    const res = await api("POST", "/v1/tasks", { type: `${pool}.generate`, payload: { title: "hi" } });
    expect(res.status).toBe(201);
    const t = res.body;
    expect(t).toMatchObject({
      type: `${pool}.generate`,
      pool,
      tenant: "default",
      status: "queued",
      priority: 5,
      payload: { title: "hi" },
      attempts: 0,
      maxAttempts: 3,
      timeoutMs: 30000,
      idempotencyKey: null,
      dependsOn: [],
      requires: { capabilities: [], cpu: 0, memoryMb: 0, gpu: 0 },
      result: null,
      error: null,
      agentId: null,
      runAfter: null,
    });
    expect(t.id).toMatch(new RegExp(`^${pool}\\.0\\.[A-Za-z0-9_-]{22}$`));
    expect(new Date(t.createdAt).toISOString()).toBe(t.createdAt);
    const got = await api("GET", `/v1/tasks/${t.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(t);
  });

  it("takes the pool from the type unless given, and an empty payload as {}", async () => {
    const pool = freshPool();
    const t = await submit(pool, { type: "x.y.z", pool });
    expect(t.pool).toBe(pool);
    expect(t.payload).toEqual({});
  });

  it("rejects invalid fields with 400 listing each one, and creates nothing", async () => {
    const pool = freshPool();
    const res = await api("POST", "/v1/tasks", { type: `${pool}.x`, priority: 10, maxAttempts: 0, timeoutMs: 5, bogus: 1 });
    expectError(res, 400, "invalid_request");
    const fields = (res.body.error.details as { field: string }[]).map((d) => d.field).sort();
    expect(fields).toEqual(["(root)", "maxAttempts", "priority", "timeoutMs"]);
    expectError(await api("GET", `/v1/pools/${pool}`), 404, "not_found");
  });

  it("rejects a missing type, a type whose prefix is no pool name, a bad pool", async () => {
    expectError(await api("POST", "/v1/tasks", { payload: {} }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", { type: "Content.generate" }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", { type: "a.b", pool: "Bad Pool" }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", { type: "a.b", priority: 1.5 }), 400, "invalid_request");
  });

  it("rejects a body that is not JSON or is not an object", async () => {
    expectError(await api("POST", "/v1/tasks", "{not json"), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", "[1,2]"), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", "null"), 400, "invalid_request");
  });

  it("answers 413 for a body over 10 MiB, with or without Content-Length", async () => {
    const big = JSON.stringify({ type: "big.x", payload: { s: "x".repeat(10 * 1024 * 1024) } });
    expectError(await api("POST", "/v1/tasks", big), 413, "payload_too_large");
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const { exports } = await import("cloudflare:workers");
    const res = await exports.default.fetch(
      new Request("https://mesh.test/v1/tasks", {
        method: "POST",
        headers: { authorization: "Bearer test-admin-key-0123456789" },
        body: stream,
        // @ts-expect-error: workerd needs duplex for a streamed request body
        duplex: "half",
      }),
    );
    expect(res.status).toBe(413);
  });

  it("needs the bearer credential: 401 without it or with a wrong one", async () => {
    expectError(await api("POST", "/v1/tasks", { type: "a.b" }, { token: null }), 401, "unauthorized");
    expectError(await api("POST", "/v1/tasks", { type: "a.b" }, { token: "wrong" }), 401, "unauthorized");
    expectError(await api("GET", "/v1/pools", undefined, { token: null, headers: { authorization: "Basic abc" } }), 401, "unauthorized");
  });
});

describe("idempotency keys", () => {
  it("answer the existing task with 200 for the same tenant and pool", async () => {
    const pool = freshPool();
    const first = await api("POST", "/v1/tasks", { type: `${pool}.x`, idempotencyKey: "k1", payload: { n: 1 } });
    expect(first.status).toBe(201);
    const again = await api("POST", "/v1/tasks", { type: `${pool}.x`, idempotencyKey: "k1", payload: { n: 2 } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const other = await api("POST", "/v1/tasks", { type: `${pool}.x`, idempotencyKey: "k2" });
    expect(other.status).toBe(201);
    const elsewhere = await api("POST", "/v1/tasks", { type: `${freshPool()}.x`, idempotencyKey: "k1" });
    expect(elsewhere.status).toBe(201);
  });

  it("create exactly one task under concurrent submits", async () => {
    const pool = freshPool();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => api("POST", "/v1/tasks", { type: `${pool}.x`, idempotencyKey: "same" })),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(19);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    const stats = await api("GET", `/v1/pools/${pool}`);
    expect(stats.body.queue.queued).toBe(1);
  });

  it("deduplicate inside one batch too", async () => {
    const pool = freshPool();
    const res = await api("POST", "/v1/tasks/batch", {
      tasks: [
        { type: `${pool}.x`, idempotencyKey: "a" },
        { type: `${pool}.x`, idempotencyKey: "a" },
        { type: `${pool}.x` },
      ],
    });
    expect(res.status).toBe(201);
    expect(res.body.tasks[0].id).toBe(res.body.tasks[1].id);
    expect(res.body.tasks[2].id).not.toBe(res.body.tasks[0].id);
  });
});

describe("POST /v1/tasks/batch", () => {
  it("submits up to 1000 tasks across pools, answering in input order", async () => {
    const a = freshPool("a");
    const b = freshPool("b");
    const tasks = Array.from({ length: 1000 }, (_, i) => ({ type: `${i % 3 === 0 ? b : a}.x`, payload: { i } }));
    const res = await api("POST", "/v1/tasks/batch", { tasks });
    expect(res.status).toBe(201);
    expect(res.body.tasks).toHaveLength(1000);
    res.body.tasks.forEach((t: any, i: number) => {
      expect(t.payload).toEqual({ i });
      expect(t.pool).toBe(i % 3 === 0 ? b : a);
    });
    const [sa, sb] = await Promise.all([api("GET", `/v1/pools/${a}`), api("GET", `/v1/pools/${b}`)]);
    expect(sa.body.queue.queued + sb.body.queue.queued).toBe(1000);
  });

  it("keeps input order (FIFO) and each task's fields when plain, keyed, dependent and delayed tasks mix", async () => {
    const pool = freshPool();
    const first = await submit(pool, { payload: { i: -1 } });
    const tasks = [
      { type: `${pool}.x`, payload: { i: 0 } },
      { type: `${pool}.x`, payload: { i: 1 }, idempotencyKey: "k1" },
      { type: `${pool}.x`, payload: { i: 2 }, maxAttempts: 7, timeoutMs: 1234 },
      { type: `${pool}.x`, payload: { i: 3 }, dependsOn: [first.id] },
      { type: `${pool}.x`, payload: { i: 4 }, delayMs: 60_000 },
      { type: `${pool}.x`, payload: { i: 5 }, idempotencyKey: "k1" },
      { type: `${pool}.x`, payload: { i: 6 }, requires: { capabilities: ["gpu"] } },
      { type: `${pool}.x`, payload: { i: 7 } },
    ];
    const res = await api("POST", "/v1/tasks/batch", { tasks });
    expect(res.status).toBe(201);
    const out = res.body.tasks;
    expect(out.map((t: any) => t.payload.i)).toEqual([0, 1, 2, 3, 4, 1, 6, 7]);
    expect(out[5].id).toBe(out[1].id);
    expect(out.map((t: any) => t.status)).toEqual(["queued", "queued", "queued", "waiting", "waiting", "queued", "queued", "queued"]);
    expect(out[2]).toMatchObject({ maxAttempts: 7, timeoutMs: 1234 });
    expect(out[4].runAfter).not.toBeNull();
    expect(out[6].requires.capabilities).toEqual(["gpu"]);
    for (const t of out) expect((await api("GET", `/v1/tasks/${t.id}`)).body).toEqual(t);
    // An agent without the capability gets the plain tasks in the order they were sent.
    await register(pool, "a1");
    const leased = await lease(pool, "a1", 10);
    expect(leased.map((t: any) => t.payload.i)).toEqual([-1, 0, 1, 2, 7]);
  });

  it("rejects 1001 tasks, an empty list, and any invalid task, submitting none", async () => {
    const pool = freshPool();
    expectError(await api("POST", "/v1/tasks/batch", { tasks: Array.from({ length: 1001 }, () => ({ type: `${pool}.x` })) }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks/batch", { tasks: [] }), 400, "invalid_request");
    const res = await api("POST", "/v1/tasks/batch", { tasks: [{ type: `${pool}.x` }, { type: `${pool}.x`, priority: -1 }] });
    expectError(res, 400, "invalid_request");
    expect(res.body.error.details[0].field).toBe("tasks.1.priority");
    expectError(await api("GET", `/v1/pools/${pool}`), 404, "not_found");
  });

  it("refuses the whole batch when one pool's dependency is unknown", async () => {
    const a = freshPool("a");
    const b = freshPool("b");
    const dep = await submit(b);
    const ghost = `${b}.0.AAAAAAAAAAAAAAAAAAAAAA`;
    const res = await api("POST", "/v1/tasks/batch", {
      tasks: [{ type: `${a}.x` }, { type: `${b}.x`, dependsOn: [dep.id] }, { type: `${b}.x`, dependsOn: [ghost] }],
    });
    expectError(res, 400, "invalid_request");
    expectError(await api("GET", `/v1/pools/${a}`), 404, "not_found");
    expect((await api("GET", `/v1/pools/${b}`)).body.queue.queued).toBe(1);
  });
});

describe("GET /v1/tasks/:id", () => {
  it("answers 404 for unknown ids and for ids that do not parse", async () => {
    const pool = freshPool();
    await submit(pool);
    expectError(await api("GET", `/v1/tasks/${pool}.0.AAAAAAAAAAAAAAAAAAAAAA`), 404, "not_found");
    expectError(await api("GET", "/v1/tasks/not-an-id"), 404, "not_found");
    expectError(await api("GET", "/v1/tasks/Bad.0.AAAAAAAAAAAAAAAAAAAAAA"), 404, "not_found");
    expectError(await api("GET", `/v1/tasks/never-seen.0.AAAAAAAAAAAAAAAAAAAAAA`), 404, "not_found");
  });
});

describe("GET /v1/tasks/:id/result", () => {
  it("answers 202 while not final and 200 once final", async () => {
    const pool = freshPool();
    const t = await submit(pool);
    const pending = await api("GET", `/v1/tasks/${t.id}/result`);
    expect(pending.status).toBe(202);
    expect(pending.body.status).toBe("queued");
    await api("POST", `/v1/tasks/${t.id}/cancel`);
    const done = await api("GET", `/v1/tasks/${t.id}/result?waitMs=1000`);
    expect(done.status).toBe(200);
    expect(done.body.status).toBe("cancelled");
  });

  it("long-polls: wakes as soon as the task completes", async () => {
    const pool = freshPool();
    const t = await submit(pool);
    await register(pool, "a1");
    const started = Date.now();
    const waiting = api("GET", `/v1/tasks/${t.id}/result?waitMs=10000`);
    const [leased] = await lease(pool, "a1");
    await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: leased.leaseToken, result: { answer: 42 } });
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.body.result).toEqual({ answer: 42 });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("waits at most waitMs, then answers 202", async () => {
    const pool = freshPool();
    const t = await submit(pool);
    const started = Date.now();
    const res = await api("GET", `/v1/tasks/${t.id}/result?waitMs=300`);
    expect(res.status).toBe(202);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expectError(await api("GET", `/v1/tasks/${t.id}/result?waitMs=30001`), 400, "invalid_request");
    expectError(await api("GET", `/v1/tasks/${t.id}/result?waitMs=abc`), 400, "invalid_request");
  });
});

describe("POST /v1/tasks/:id/cancel", () => {
  it("cancels queued and leased tasks; a later completion gets 409 lease_lost", async () => {
    const pool = freshPool();
    const t = await submit(pool);
    await register(pool, "a1");
    const [leased] = await lease(pool, "a1");
    const cancelled = await api("POST", `/v1/tasks/${t.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe("cancelled");
    expectError(await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: leased.leaseToken }), 409, "lease_lost");
    expectError(await api("POST", `/v1/tasks/${t.id}/cancel`), 409, "conflict");
    expect((await api("GET", `/v1/pools/${pool}/agents/a1`)).body.inFlight).toBe(0);
  });
});

describe("priorities", () => {
  it("serve higher priority first, then first in first out", async () => {
    const pool = freshPool();
    const order = [3, 9, 3, 0, 9, 5];
    const ids: string[] = [];
    for (const priority of order) ids.push((await submit(pool, { priority })).id);
    await register(pool, "a1");
    const leased = await lease(pool, "a1", 6);
    const expected = order
      .map((priority, i) => ({ priority, i }))
      .sort((x, y) => y.priority - x.priority || x.i - y.i)
      .map(({ i }) => ids[i]);
    expect(leased.map((t) => t.id)).toEqual(expected);
  });
});

describe("dependsOn", () => {
  it("holds a task until every dependency succeeds", async () => {
    const pool = freshPool();
    const a = await submit(pool);
    const b = await submit(pool);
    const c = await submit(pool, { dependsOn: [a.id, b.id] });
    expect(c.status).toBe("waiting");
    await register(pool, "w");
    const leased = await lease(pool, "w", 10);
    expect(leased.map((t) => t.id).sort()).toEqual([a.id, b.id].sort());
    const byId = Object.fromEntries(leased.map((t) => [t.id, t]));
    await api("POST", `/v1/tasks/${a.id}/complete`, { leaseToken: byId[a.id].leaseToken });
    expect((await api("GET", `/v1/tasks/${c.id}`)).body.status).toBe("waiting");
    await api("POST", `/v1/tasks/${b.id}/complete`, { leaseToken: byId[b.id].leaseToken });
    expect((await api("GET", `/v1/tasks/${c.id}`)).body.status).toBe("queued");
    expect((await lease(pool, "w")).map((t) => t.id)).toEqual([c.id]);
  });

  it("makes dependents dead, transitively, when a dependency is cancelled or dead", async () => {
    const pool = freshPool();
    const a = await submit(pool);
    const b = await submit(pool, { dependsOn: [a.id] });
    const c = await submit(pool, { dependsOn: [b.id] });
    await api("POST", `/v1/tasks/${a.id}/cancel`);
    const gotB = (await api("GET", `/v1/tasks/${b.id}`)).body;
    const gotC = (await api("GET", `/v1/tasks/${c.id}`)).body;
    expect(gotB.status).toBe("dead");
    expect(gotB.error.message).toContain(a.id);
    expect(gotC.status).toBe("dead");
    expect(gotC.error.message).toContain(b.id);
    const late = await submit(pool, { dependsOn: [a.id] });
    expect(late.status).toBe("dead");
  });

  it("starts queued when every dependency already succeeded", async () => {
    const pool = freshPool();
    const a = await submit(pool);
    await register(pool, "w");
    const [l] = await lease(pool, "w");
    await api("POST", `/v1/tasks/${a.id}/complete`, { leaseToken: l.leaseToken });
    expect((await submit(pool, { dependsOn: [a.id] })).status).toBe("queued");
  });

  it("rejects dependencies in another pool or that do not exist", async () => {
    const pool = freshPool();
    const other = await submit(freshPool());
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.x`, dependsOn: [other.id] }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.x`, dependsOn: [`${pool}.0.AAAAAAAAAAAAAAAAAAAAAA`] }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.x`, dependsOn: ["garbage"] }), 400, "invalid_request");
  });
});
