import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { PoolCoordinator } from "../../durable-objects/pool-coordinator";
import { listQuery } from "../../durable-objects/pool-coordinator/tasks";
import { TASK_STATUSES } from "../../contract/records";
import { api, freshPool, lease, PoolClock, poolStub, register, submit } from "../helpers";

const alarmOf = (pool: string) => runInDurableObject(poolStub(pool), (_: PoolCoordinator, state) => state.storage.getAlarm());

describe("the alarm", () => {
  it("expires a lease: the attempt counts as failed and the task waits out its backoff", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool, { timeoutMs: 2000 });
    await register(pool, "a1");
    const [l] = await lease(pool, "a1");
    expect(await alarmOf(pool)).toBe(clock.now + 2000);

    expect(await clock.advance(1999)).toBe(true);
    expect((await api("GET", `/v1/tasks/${t.id}`)).body.status).toBe("leased");

    await clock.advance(1);
    const expired = (await api("GET", `/v1/tasks/${t.id}`)).body;
    expect(expired).toMatchObject({ status: "waiting", attempts: 1, error: { code: "lease_expired", attempt: 1 } });
    expect((await api("GET", `/v1/pools/${pool}/agents/a1`)).body.inFlight).toBe(0);
    expect((await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken })).status).toBe(409);

    await clock.advance(1000);
    expect((await api("GET", `/v1/tasks/${t.id}`)).body.status).toBe("queued");
    const metrics = await api("GET", "/metrics");
    expect(metrics.body).toContain(`daa_tasks_expired_total{pool="${pool}"} 1`);
  });

  it("makes a task whose every lease expires dead after maxAttempts (a stall cannot loop forever)", async () => {
    const pool = freshPool();
    // Time moves far here; this test is not about heartbeats, so the agents need not send any.
    await api("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 3_600_000 });
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool, { timeoutMs: 1000, maxAttempts: 3 });
    await register(pool, "a1");
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [l] = await lease(pool, "a1");
      expect(l.attempt).toBe(attempt);
      await clock.advance(1000);
      await clock.advance(300_000);
    }
    const dead = (await api("GET", `/v1/tasks/${t.id}`)).body;
    expect(dead).toMatchObject({ status: "dead", attempts: 3, error: { code: "lease_expired" } });
  });

  it("releases a delayed task when its delay ends", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool, { delayMs: 60_000 });
    expect(t.status).toBe("waiting");
    expect(Date.parse(t.runAfter)).toBe(clock.now + 60_000);
    await register(pool, "a1");
    expect(await lease(pool, "a1")).toEqual([]);
    await clock.advance(59_999);
    expect(await lease(pool, "a1")).toEqual([]);
    await clock.advance(1);
    expect((await lease(pool, "a1")).map((x) => x.id)).toEqual([t.id]);
  });

  it("wakes a long-polling agent when a delayed task becomes ready", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool, { delayMs: 5_000 });
    await register(pool, "a1");
    const waiting = lease(pool, "a1", 1, 5_000);
    await new Promise((r) => setTimeout(r, 50));
    await clock.advance(5_000);
    expect((await waiting).map((x) => x.id)).toEqual([t.id]);
  });

  it("purges finished tasks after the retention, with their idempotency keys", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    const day = 24 * 3600 * 1000;
    const t = await submit(pool, { idempotencyKey: "once" });
    await api("POST", `/v1/tasks/${t.id}/cancel`);
    await clock.advance(7 * day - 1);
    expect((await api("GET", `/v1/tasks/${t.id}`)).status).toBe(200);
    expect((await api("POST", "/v1/tasks", { type: `${pool}.work`, idempotencyKey: "once" })).status).toBe(200);
    await clock.advance(1);
    expect((await api("GET", `/v1/tasks/${t.id}`)).status).toBe(404);
    expect((await api("POST", "/v1/tasks", { type: `${pool}.work`, idempotencyKey: "once" })).status).toBe(201);
  });

  it("follows a configured retention", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    expect((await api("PUT", `/v1/pools/${pool}/config`, { retentionMs: 60_000 })).body.retentionMs).toBe(60_000);
    const t = await submit(pool);
    await api("POST", `/v1/tasks/${t.id}/cancel`);
    await clock.advance(60_000);
    expect((await api("GET", `/v1/tasks/${t.id}`)).status).toBe(404);
    // The purge takes the task out of the counts by status too.
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue).toMatchObject({ cancelled: 0, queued: 0 });
  });

  it("is idempotent: running it with nothing due changes nothing and schedules the next timer", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool, { delayMs: 10_000 });
    expect(await runDurableObjectAlarm(poolStub(pool))).toBe(true);
    expect((await api("GET", `/v1/tasks/${t.id}`)).body.status).toBe("waiting");
    expect(await alarmOf(pool)).toBe(clock.now + 10_000);
    await clock.advance(10_000);
    expect(await alarmOf(pool)).toBeNull();
    expect(await runDurableObjectAlarm(poolStub(pool))).toBe(false);
  });

  it("works off a large backlog of due timers in chunks until none is left", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    const tasks = Array.from({ length: 1000 }, () => ({ type: `${pool}.x`, delayMs: 1000 }));
    for (let i = 0; i < 5; i++) expect((await api("POST", "/v1/tasks/batch", { tasks })).status).toBe(201);
    clock.now += 1000;
    await clock.install();
    let runs = 0;
    while (await runDurableObjectAlarm(poolStub(pool))) runs++;
    expect(runs).toBeGreaterThanOrEqual(2);
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue).toMatchObject({ waiting: 0, queued: 5000 });
  });
});

describe("a restart of the coordinator", () => {
  it("keeps tasks, leases and timers, and re-arms the alarm when the object starts", async () => {
    const pool = freshPool();
    const clock = await new PoolClock(pool).install();
    const queued = await submit(pool);
    const leasedTask = await submit(pool, { timeoutMs: 5000, priority: 9 });
    await register(pool, "a1");
    const [l] = await lease(pool, "a1");
    expect(l.id).toBe(leasedTask.id);
    const delayed = await submit(pool, { delayMs: 20_000 });

    // Lose the alarm, as older local runtimes did across a restart, then evict the object.
    await runInDurableObject(poolStub(pool), (_: PoolCoordinator, state) => state.storage.deleteAlarm());
    await evictDurableObject(poolStub(pool));
    expect((await api("GET", `/v1/tasks/${queued.id}`)).body.status).toBe("queued");
    expect(await alarmOf(pool)).not.toBeNull();

    await clock.install();
    expect((await api("POST", `/v1/tasks/${leasedTask.id}/extend`, { leaseToken: l.leaseToken, extendMs: 5000 })).status).toBe(200);
    await clock.advance(5000);
    expect((await api("GET", `/v1/tasks/${leasedTask.id}`)).body.status).toBe("waiting");
    await clock.advance(20_000);
    expect((await api("GET", `/v1/tasks/${delayed.id}`)).body.status).toBe("queued");
  });
});

describe("storage", () => {
  it("leases from the ready index and finds timers from the timer index, never scanning all tasks", async () => {
    const pool = freshPool();
    await submit(pool);
    const plans = await runInDurableObject(poolStub(pool), (_: PoolCoordinator, state) => {
      const plan = (q: string) =>
        state.storage.sql
          .exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${q}`)
          .toArray()
          .map((r) => r.detail)
          .join("; ");
      return {
        ready: plan("SELECT seq, priority FROM tasks WHERE lane = 1 AND status = 'queued' ORDER BY priority DESC, seq LIMIT 100"),
        timer: plan("SELECT min(timer_at) AS at FROM tasks WHERE timer_at IS NOT NULL"),
        due: plan("SELECT * FROM tasks WHERE timer_at IS NOT NULL AND timer_at <= 5 ORDER BY timer_at LIMIT 500"),
        schema: state.storage.sql.exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'tasks'").one().sql,
        lists: Object.fromEntries(
          [null, ...TASK_STATUSES].flatMap((status) =>
            [false, true].map((byTenant) => [`${status ?? "any"}${byTenant ? " of a tenant" : ""}`, plan(listQuery(status, byTenant).replaceAll("?", "1"))]),
          ),
        ),
      };
    });
    expect(plans.ready).toContain("tasks_ready");
    expect(plans.ready).not.toContain("TEMP B-TREE");
    expect(plans.timer).toContain("tasks_timer");
    expect(plans.due).toContain("tasks_timer");
    expect(plans.schema).toMatch(/CHECK \(status IN/);
    // Listing by status reads the index holding that status, in submission order (leased ones: few, then sorted).
    for (const [list, plan] of Object.entries(plans.lists)) {
      if (list.startsWith("any")) expect(plan, list).toMatch(/SEARCH tasks USING INTEGER PRIMARY KEY/);
      else if (list.startsWith("leased")) expect(plan, list).toContain("tasks_by_agent");
      else {
        expect(plan, list).toContain("tasks_by_status");
        expect(plan, list).not.toContain("TEMP B-TREE");
      }
    }
  });

  it("refuses a status outside the CHECK constraint", async () => {
    const pool = freshPool();
    const t = await submit(pool);
    const error = await runInDurableObject(poolStub(pool), (_: PoolCoordinator, state) => {
      try {
        state.storage.sql.exec("UPDATE tasks SET status = 'lost' WHERE id = ?", t.id);
        return null;
      } catch (err) {
        return String(err);
      }
    });
    expect(error).toContain("CHECK");
  });

  it("does not create storage for a pool that is only read", async () => {
    const pool = freshPool();
    expect((await api("GET", `/v1/pools/${pool}`)).status).toBe(404);
    expect((await api("GET", `/v1/pools/${pool}/tasks`)).status).toBe(404);
    const tables = await runInDurableObject(poolStub(pool), (_: PoolCoordinator, state) =>
      state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'tasks'").toArray().length,
    );
    expect(tables).toBe(0);
  });
});
