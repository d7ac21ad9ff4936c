import { describe, expect, it } from "vitest";
import { api, expectError, freshPool, lease, register } from "../helpers";
import { createKey } from "../security/fixtures";
import { clientOf, Clocks, complete, freshTenant, HOUR, hourRows, hourStart, submitAs, usage } from "./fixtures";

const AGENT = { resources: { cpu: 8, memoryMb: 8192, gpu: 4 }, maxConcurrency: 10 };

describe("usage accounting", () => {
  it("sums held seconds exactly on complete, fail, expiry and cancel; GPU time is seconds x requires.gpu", async () => {
    const pool = freshPool("gov");
    const tenant = freshTenant();
    const key = await clientOf(tenant);
    const t0 = hourStart() + 10 * 60_000;
    await submitAs(key, pool); // creates the pool before its clock is set
    const clocks = await new Clocks(pool, t0).install();
    const first = await lease(pool, (await register(pool, "g-1", AGENT)).agentId, 10);
    await complete(first[0].id, first[0].leaseToken); // held 0 s
    const a = await submitAs(key, pool, { requires: { gpu: 1 } });
    const b = await submitAs(key, pool);
    const c = await submitAs(key, pool, { requires: { gpu: 2 }, maxAttempts: 1, timeoutMs: 5000 });
    const d = await submitAs(key, pool);
    const leased = new Map((await lease(pool, "g-1", 10)).map((t: any) => [t.id, t.leaseToken]));
    expect([...leased.keys()].sort()).toEqual([a.id, b.id, c.id, d.id].sort());
    await clocks.to(t0 + 2000);
    expect((await api("POST", `/v1/tasks/${d.id}/cancel`)).status).toBe(200);
    await clocks.to(t0 + 3000);
    await complete(a.id, leased.get(a.id)!);
    await clocks.to(t0 + 7000);
    expect((await api("POST", `/v1/tasks/${b.id}/fail`, { leaseToken: leased.get(b.id), error: { message: "no" }, retryable: false })).status).toBe(200);
    // c's lease expired at t0 + 5000; the alarm that finds it runs later: it held the task until its expiry only.
    await clocks.to(t0 + 9000);
    expect((await api("GET", `/v1/tasks/${c.id}`)).body.status).toBe("dead");
    const res = await usage(tenant, `?from=${t0 - HOUR}&to=${t0 + HOUR}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ tenant, from: new Date(t0 - HOUR).toISOString(), to: new Date(t0 + HOUR).toISOString(), pools: [{ pool, tasks: 5, taskSeconds: 17, gpuSeconds: 13 }] });

    const metrics = await api("GET", "/metrics");
    expect(metrics.body).toContain(`daa_task_seconds_total{pool="${pool}",tenant="${tenant}"} 17\n`);
    expect(metrics.body).toContain(`daa_gpu_seconds_total{pool="${pool}",tenant="${tenant}"} 13\n`);
    expect(metrics.body).toContain("# TYPE daa_task_seconds_total counter");
    expect(metrics.body).toContain("# TYPE daa_gpu_seconds_total counter");
  });

  it("splits a lease over the hours it covered; from/to select hour buckets; two pools and a sharded pool add up", async () => {
    const tenant = freshTenant();
    const key = await clientOf(tenant);
    const h1 = hourStart(2);
    const [p1, p2, p3] = [freshPool("gov"), freshPool("gov"), freshPool("gov")];
    for (const p of [p1, p2, p3]) await submitAs(key, p);
    expect((await api("POST", `/v1/pools/${p3}/shards`, {})).status).toBe(201);
    const c1 = await new Clocks(p1, h1 - 1000).install();
    const c2 = await new Clocks(p2, h1 - 1000).install();
    const c3 = await new Clocks(p3, h1 - 1000, 2).install();
    // p1: the first task held from h1 - 1 s to h1 + 2 s.
    const [t1] = await lease(p1, (await register(p1, "g-a", AGENT)).agentId, 1);
    await c1.to(h1 + 2000);
    await complete(t1.id, t1.leaseToken);
    expect(await hourRows(p1, tenant)).toEqual([
      { hour: h1 - HOUR, tasks: 0, task_ms: 1000, gpu_ms: 0 },
      { hour: h1, tasks: 1, task_ms: 2000, gpu_ms: 0 },
    ]);
    // p2: one GPU task, 4 s.
    await submitAs(key, p2, { requires: { gpu: 1 } });
    await register(p2, "g-b", AGENT);
    const held2 = await lease(p2, "g-b", 10);
    await c2.to(h1 + 3000);
    for (const t of held2) await complete(t.id, t.leaseToken);
    // p3: tasks on both shards (shard 0 made to look slow so that some go to shard 1).
    for (let i = 0; i < 6; i++) {
      const res = await api("POST", "/v1/tasks", { type: `${p3}.work` }, { token: key, headers: { "x-daa-test-shard-delay": i % 2 ? "0=200" : "1=200" } });
      expect(res.status).toBe(201);
    }
    await register(p3, "g-c", AGENT);
    const held3: any[] = [];
    for (let i = 0; i < 5 && held3.length < 7; i++) held3.push(...(await lease(p3, "g-c", 10)));
    expect(held3).toHaveLength(7);
    await c3.to(h1 + 5000);
    for (const t of held3) await complete(t.id, t.leaseToken);
    const shardTasks = [(await hourRows(p3, tenant)).reduce((n, r) => n + r.tasks, 0), (await hourRows(`${p3}#1`, tenant)).reduce((n, r) => n + r.tasks, 0)];
    expect(shardTasks[0]! + shardTasks[1]!).toBe(7);
    expect(shardTasks.every((n) => n > 0), JSON.stringify(shardTasks)).toBe(true);

    const all = await usage(tenant, `?from=${new Date(h1 - HOUR).toISOString()}&to=${new Date(h1 + HOUR).toISOString()}`);
    expect(all.status, JSON.stringify(all.body)).toBe(200);
    expect(all.body.pools).toEqual(
      [
        { pool: p1, tasks: 1, taskSeconds: 3, gpuSeconds: 0 },
        { pool: p2, tasks: 2, taskSeconds: 8, gpuSeconds: 4 },
        { pool: p3, tasks: 7, taskSeconds: 42, gpuSeconds: 0 },
      ].sort((a, b) => (a.pool < b.pool ? -1 : 1)),
    );
    // Only the hour before h1: p1's first second (no task settled there), p2's and p3's whole leases began there too.
    const before = await usage(tenant, `?from=${h1 - HOUR}&to=${h1}`);
    expect(before.body.pools.find((p: any) => p.pool === p1)).toEqual({ pool: p1, tasks: 0, taskSeconds: 1, gpuSeconds: 0 });
    // A window with nothing: no pools.
    expect((await usage(tenant, `?from=${h1 + 5 * HOUR}&to=${h1 + 6 * HOUR}`)).body.pools).toEqual([]);
  });

  it("permissions: the tenant's admin and auditor, operators and the bootstrap key; another tenant's 404; bad from/to 400", async () => {
    const tenant = freshTenant();
    const other = freshTenant();
    const [admin, auditor, client, otherAdmin, otherAuditor, otherOperator] = await Promise.all([
      createKey(tenant, ["admin"]),
      createKey(tenant, ["auditor"]),
      createKey(tenant, ["client"]),
      createKey(other, ["admin"]),
      createKey(other, ["auditor"]),
      createKey(other, ["operator"]),
    ]);
    for (const k of [admin, auditor, otherOperator]) expect((await usage(tenant, "", k.key)).status).toBe(200);
    const mine = await usage(tenant, "");
    expect(mine.status).toBe(200);
    expect(Date.parse(mine.body.to) - Date.parse(mine.body.from)).toBe(24 * HOUR);
    expect(Math.abs(Date.parse(mine.body.to) - Date.now())).toBeLessThan(60_000);
    expectError(await usage(tenant, "", client.key), 403, "forbidden");
    for (const k of [otherAdmin, otherAuditor]) expectError(await usage(tenant, "", k.key), 404, "not_found");
    for (const q of ["?from=yesterday", "?to=-5", "?from=2026-13-01T00:00:00Z", "?from=2000&to=1000", "?from=1000&to=1000"]) expectError(await usage(tenant, q), 400, "invalid_request");
  });
});
