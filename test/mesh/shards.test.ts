import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api, freshPool, submit } from "../helpers";
import { createKey } from "../security/fixtures";

/**
 * A pool over several shards, through the HTTP API only (API.md, "Shards, routing and shared state"): adding
 * shards, tasks spreading over them and found by id, stats and lists adding up every shard, agents serving every
 * shard, idempotency keys across shards, and a drain that moves queued tasks without losing or duplicating one.
 */

const shardOf = (pool: string, id: number) => env.POOL.getByName(id === 0 ? pool : `${pool}#${id}`);

async function addShard(pool: string, body: object = {}): Promise<any> {
  const res = await api("POST", `/v1/pools/${pool}/shards`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** Runs a shard's alarm until it has nothing due (a drain hands tasks over a chunk per alarm). */
async function settleAlarms(pool: string, id: number): Promise<void> {
  for (let i = 0; i < 20 && (await runDurableObjectAlarm(shardOf(pool, id))); i++);
}

async function allTasks(pool: string, limit = 3): Promise<any[]> {
  const seen: any[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const res: any = await api("GET", `/v1/pools/${pool}/tasks?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(res.status).toBe(200);
    seen.push(...res.body.tasks);
    cursor = res.body.cursor;
    if (cursor === null) return seen;
  }
  throw new Error("the list did not end");
}

describe("shards", () => {
  it("a pool starts with shard 0; shards are added with ids 1, 2, ... and listed with their queues", async () => {
    const pool = freshPool("sh");
    await submit(pool);
    const before = await api("GET", `/v1/pools/${pool}/shards`);
    expect(before.status).toBe(200);
    expect(before.body.shards).toHaveLength(1);
    expect(before.body.shards[0]).toMatchObject({ id: "0", region: null, state: "active", agents: 0 });
    expect(before.body.shards[0].queue.queued).toBe(1);
    expect(before.body.topology).toBe("star");
    expect(await addShard(pool, { region: "weur" })).toMatchObject({ id: "1", region: "weur", state: "active" });
    expect(await addShard(pool)).toMatchObject({ id: "2", region: null, state: "active" });
    const after = await api("GET", `/v1/pools/${pool}/shards`);
    expect(after.body.shards.map((s: any) => [s.id, s.state])).toEqual([["0", "active"], ["1", "active"], ["2", "active"]]);
  });

  it("counts a tenant whose tasks all went to a later shard: shard 0, which never saw it, adds nothing (a case the fuzzer found)", async () => {
    const pool = freshPool("sh");
    await submit(pool);
    await addShard(pool);
    // A new tenant per try, until one's first (and only) task lands on shard 1 (the test hook makes shard 0 look far).
    let key = "";
    for (let i = 0; i < 10 && key === ""; i++) {
      const made = await createKey(`sh-t${i}-${Math.floor(performance.now())}`, ["client"]);
      const res = await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: made.key, headers: { "x-daa-test-shard-delay": "0=200" } });
      expect(res.status).toBe(201);
      if (res.body.shard === "1") key = made.key;
    }
    expect(key).not.toBe("");
    const pools = await api("GET", "/v1/pools", undefined, { token: key });
    expect(pools.status, JSON.stringify(pools.body)).toBe(200);
    expect(pools.body.pools.find((p: any) => p.pool === pool)?.queue.queued).toBe(1);
    expect((await api("GET", `/v1/pools/${pool}`, undefined, { token: key })).status).toBe(200);
  });

  it("refuses a region that is not a location hint, and a pool nobody wrote to", async () => {
    const pool = freshPool("sh");
    expect((await api("POST", `/v1/pools/${pool}/shards`, {})).status).toBe(404);
    await submit(pool);
    const bad = await api("POST", `/v1/pools/${pool}/shards`, { region: "mars" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].field).toBe("region");
    expect((await api("GET", `/v1/pools/${pool}/shards`)).body.shards).toHaveLength(1);
  });

  it("spreads new tasks over the active shards, says where each went, and finds each by id", async () => {
    const pool = freshPool("sh");
    await submit(pool);
    await addShard(pool);
    const placed = new Map<string, number>();
    for (let i = 0; i < 12; i++) {
      const res = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { i } });
      expect(res.status).toBe(201);
      expect(res.headers.get("x-daa-shard")).toBe(res.body.shard);
      expect(res.body.id.split(".")[1]).toBe(res.body.shard);
      placed.set(res.body.id, Number(res.body.shard));
    }
    const counts = [...placed.values()].reduce((m, s) => m.set(s, (m.get(s) ?? 0) + 1), new Map<number, number>());
    expect(counts.get(0) ?? 0).toBeGreaterThan(0);
    expect(counts.get(1) ?? 0).toBeGreaterThan(0);
    for (const [id, shard] of placed) {
      const got = await api("GET", `/v1/tasks/${id}`);
      expect(got.status).toBe(200);
      expect(got.body.shard).toBe(String(shard));
    }
    const stats = await api("GET", `/v1/pools/${pool}`);
    expect(stats.body.queue.queued).toBe(13);
    const batch = await api("POST", "/v1/tasks/batch", { tasks: Array.from({ length: 6 }, (_, i) => ({ type: `${pool}.work`, payload: { b: i } })) });
    expect(batch.status).toBe(201);
    expect(new Set(batch.body.tasks.map((t: any) => t.shard)).size).toBe(2);
    expect(batch.headers.get("x-daa-shard")).toBe("0,1");
    const listed = await allTasks(pool);
    expect(listed.map((t) => t.id).sort()).toEqual([...new Set(listed.map((t) => t.id))].sort());
    expect(listed).toHaveLength(19);
    const metrics = await api("GET", "/metrics");
    expect(metrics.body).toMatch(new RegExp(`daa_tasks\\{pool="${pool}",status="queued"\\} 19`));
    // Every routed task is counted once, by the shard it went to and why.
    const routed = [...metrics.body.matchAll(new RegExp(`daa_routing_decisions_total\\{pool="${pool}",shard="(\\d+)",reason="(\\w+)"\\} (\\d+)`, "g"))];
    expect(routed.reduce((n: number, m: RegExpMatchArray) => n + Number(m[3]), 0)).toBe(19);
    expect(new Set(routed.map((m: RegExpMatchArray) => m[1]))).toEqual(new Set(["0", "1"]));
  });

  it("deduplicates an idempotency key across shards", async () => {
    const pool = freshPool("sh");
    const first = await submit(pool, { idempotencyKey: "before-sharding" });
    await addShard(pool);
    await addShard(pool);
    const ids = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await api("POST", "/v1/tasks", { type: `${pool}.work`, idempotencyKey: "k-1" });
      expect([200, 201]).toContain(res.status);
      ids.add(res.body.id);
    }
    expect(ids.size).toBe(1);
    const again = await api("POST", "/v1/tasks", { type: `${pool}.work`, idempotencyKey: "before-sharding" });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.id);
    const batch = await api("POST", "/v1/tasks/batch", { tasks: [{ type: `${pool}.work`, idempotencyKey: "k-2" }, { type: `${pool}.work`, idempotencyKey: "k-2" }, { type: `${pool}.work`, idempotencyKey: "k-1" }] });
    expect(batch.status).toBe(201);
    expect(batch.body.tasks[0].id).toBe(batch.body.tasks[1].id);
    expect(batch.body.tasks[2].id).toBe([...ids][0]);
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue.queued).toBe(3);
  });

  it("an agent registered before a shard was added serves it too, and one lease reaches every shard", async () => {
    const pool = freshPool("sh");
    const reg = await api("POST", `/v1/pools/${pool}/agents`, { agentId: "a1", maxConcurrency: 50 });
    expect(reg.status).toBe(201);
    expect(reg.body.shard).toBe("0");
    await addShard(pool);
    // The test hook makes one shard look far, then the other (the router learns it from the first call): tasks
    // land on both.
    const landed: string[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await api("POST", "/v1/tasks", { type: `${pool}.work` }, { headers: { "x-daa-test-shard-delay": i < 5 ? "0=40" : "1=40" } });
      landed.push(res.body.shard);
    }
    expect(new Set(landed)).toEqual(new Set(["0", "1"]));
    const agents = await api("GET", `/v1/pools/${pool}/agents`);
    expect(agents.body.agents.map((a: any) => [a.agentId, a.shard])).toEqual([["a1", "0"]]);
    expect((await api("GET", `/v1/pools/${pool}`)).body.agents.running).toBe(1);
    const leased = await api("POST", `/v1/pools/${pool}/agents/a1/lease`, { max: 10 });
    expect(leased.status).toBe(200);
    expect(leased.body.tasks).toHaveLength(10);
    expect(new Set(leased.body.tasks.map((t: any) => t.shard))).toEqual(new Set(["0", "1"]));
    const settled = await api("POST", "/v1/tasks/settle", { items: leased.body.tasks.map((t: any) => ({ action: "complete", id: t.id, leaseToken: t.leaseToken, result: { ok: true } })) });
    expect(settled.body.results.every((r: any) => r.status === "succeeded")).toBe(true);
    const hb = await api("POST", `/v1/pools/${pool}/agents/a1/heartbeat`, { load: { currentLoad: 0.5 } });
    expect(hb.status).toBe(200);
    expect(hb.body.shard).toBe("0");
  });

  it("drains a shard: queued tasks move keeping their ids, leased ones finish there, then it retires", async () => {
    const pool = freshPool("sh");
    await submit(pool);
    await addShard(pool);
    const reg = await api("POST", `/v1/pools/${pool}/agents`, { agentId: "worker", maxConcurrency: 100, metadata: {} });
    expect(reg.status).toBe(201);
    const tasks: any[] = [];
    for (let i = 0; i < 30; i++) tasks.push(await submit(pool, { payload: { i } }));
    const onOne = tasks.filter((t) => t.shard === "1");
    expect(onOne.length).toBeGreaterThan(2);
    // One task of shard 1 is leased before the drain: it stays there until it is settled.
    const lease = await api("POST", `/v1/pools/${pool}/agents/worker/lease`, { max: 1 });
    const held = lease.body.tasks[0];
    expect(held).toBeDefined();

    const drained = await api("POST", `/v1/pools/${pool}/shards/1/drain`);
    expect(drained.status).toBe(200);
    expect(drained.body.state).toBe("draining");
    await settleAlarms(pool, 1);

    // No new task goes to a draining shard.
    for (let i = 0; i < 5; i++) expect((await submit(pool)).shard).toBe("0");
    // Every task is found by its old id, once, on shard 0 unless it is the leased one of shard 1.
    for (const t of tasks) {
      const got = await api("GET", `/v1/tasks/${t.id}`);
      expect(got.status).toBe(200);
      expect(got.body.id).toBe(t.id);
      expect(got.body.shard).toBe(t.id === held.id ? held.shard : "0");
    }
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue).toMatchObject({ queued: 35, leased: 1 });
    const listed = await allTasks(pool, 7);
    expect(listed).toHaveLength(36);
    expect(new Set(listed.map((t) => t.id)).size).toBe(36);
    const last = await api("POST", `/v1/pools/${pool}/shards/0/drain`);
    expect(last.status).toBe(409);
    expect(last.body.error.code).toBe("conflict");

    // The leased task settles by its id; once shard 1 holds nothing unfinished it retires.
    const done = await api("POST", `/v1/tasks/${held.id}/complete`, { leaseToken: held.leaseToken, result: { fine: true } });
    expect(done.status).toBe(200);
    await settleAlarms(pool, Number(held.shard));
    const shards = (await api("GET", `/v1/pools/${pool}/shards`)).body.shards;
    expect(shards.map((s: any) => [s.id, s.state])).toEqual(held.shard === "1" ? [["0", "active"], ["1", "retired"]] : [["0", "active"], ["1", shards[1].state]]);
    expect((await api("GET", `/v1/tasks/${held.id}`)).body.status).toBe("succeeded");
  });

  it("a dead task of a retired shard is redriven to an active one", async () => {
    const pool = freshPool("sh");
    await submit(pool);
    await addShard(pool);
    await api("POST", `/v1/pools/${pool}/agents`, { agentId: "w", maxConcurrency: 100 });
    let doomed: any = null;
    for (let i = 0; i < 20 && !doomed; i++) {
      const t = await submit(pool, { maxAttempts: 1 });
      if (t.shard === "1") doomed = t;
    }
    expect(doomed).not.toBeNull();
    // Lease everything, fail the doomed one for good, complete the rest.
    const leased = (await api("POST", `/v1/pools/${pool}/agents/w/lease`, { max: 100 })).body.tasks as any[];
    const items = leased.map((t) => (t.id === doomed.id ? { action: "fail", id: t.id, leaseToken: t.leaseToken, error: { message: "no" }, retryable: false } : { action: "complete", id: t.id, leaseToken: t.leaseToken, result: 1 }));
    expect((await api("POST", "/v1/tasks/settle", { items })).status).toBe(200);
    expect((await api("GET", `/v1/tasks/${doomed.id}`)).body.status).toBe("dead");
    expect((await api("POST", `/v1/pools/${pool}/shards/1/drain`)).status).toBe(200);
    await settleAlarms(pool, 1);
    expect((await api("GET", `/v1/pools/${pool}/shards`)).body.shards[1].state).toBe("retired");
    const redriven = await api("POST", `/v1/pools/${pool}/dlq/redrive`, { ids: [doomed.id] });
    expect(redriven.body).toEqual({ redriven: 1, skipped: [] });
    await settleAlarms(pool, 1);
    const again = await api("GET", `/v1/tasks/${doomed.id}`);
    expect(again.body).toMatchObject({ status: "queued", shard: "0" });
    const taken = (await api("POST", `/v1/pools/${pool}/agents/w/lease`, { max: 10 })).body.tasks as any[];
    expect(taken.map((t) => t.id)).toEqual([doomed.id]);
  });

  it("a moved task is cancelled, leased and settled by its old id", async () => {
    const pool = freshPool("sh");
    await submit(pool);
    await addShard(pool);
    const onOne: any[] = [];
    let total = 1;
    for (let i = 0; i < 20 && onOne.length < 3; i++, total++) {
      const t = await submit(pool);
      if (t.shard === "1") onOne.push(t);
    }
    expect(onOne.length).toBe(3);
    expect((await api("POST", `/v1/pools/${pool}/shards/1/drain`)).status).toBe(200);
    await settleAlarms(pool, 1);
    const cancelled = await api("POST", `/v1/tasks/${onOne[0].id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id: onOne[0].id, status: "cancelled", shard: "0" });
    await api("POST", `/v1/pools/${pool}/agents`, { agentId: "late", maxConcurrency: 100 });
    const leased = (await api("POST", `/v1/pools/${pool}/agents/late/lease`, { max: 100 })).body.tasks;
    const moved = leased.filter((t: any) => onOne.some((o) => o.id === t.id));
    expect(moved).toHaveLength(2);
    const res = await api("POST", "/v1/tasks/settle", { items: moved.map((t: any) => ({ action: "complete", id: t.id, leaseToken: t.leaseToken, result: 1 })) });
    expect(res.body.results.map((r: any) => r.status)).toEqual(["succeeded", "succeeded"]);
    const retired = (await api("GET", `/v1/pools/${pool}/shards`)).body.shards[1];
    expect(retired.state).toBe("retired");
    // A retired shard still counts and lists what it finished (here: nothing; its tasks all moved).
    const listed = await allTasks(pool, 4);
    expect(listed).toHaveLength(total);
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue.cancelled).toBe(1);
  });
});
