import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { GENERATION_FRESH_MS } from "../../src/mesh/cache/isolate";
import { api, expectError, freshPool, register } from "../helpers";

/**
 * The exact output cache (API.md, "Caches and vector indexes"): a cacheable task's success fills R2, its tenant's
 * index and KV; a repeat is answered from the nearest level that holds it (L1 the isolate, L2 KV, L3 the Cache API
 * and R2) with no agent run and no task row; purges reach every level; tenants never share entries; stored bytes
 * are ciphertext. Several isolates are shown with the test hook `x-daa-test-isolate`.
 */

const isolate = (name: string) => ({ headers: { "x-daa-test-isolate": name } });
let isolates = 0;
/** An isolate no test has used: its L1 and generation cache start empty. */
const freshIsolate = () => isolate(`i${++isolates}-${Math.floor(performance.now())}`);

async function cachedPool(config: Record<string, unknown> = {}): Promise<string> {
  const pool = freshPool("c");
  expect((await api("PUT", `/v1/pools/${pool}/config`, { cache: { types: [`${pool}.gen`], ...config } })).status).toBe(200);
  await register(pool, "worker");
  return pool;
}

/** Submits, runs the task on the pool's agent with `result`, and waits until its entry is in the cache. */
async function runOnce(pool: string, body: Record<string, unknown>, result: unknown, init = {}): Promise<any> {
  const submitted = await api("POST", "/v1/tasks", { type: `${pool}.gen`, ...body }, init);
  expect(submitted.status).toBe(201);
  expect(submitted.headers.get("x-daa-cache")).toBe("miss");
  const leased = await api("POST", `/v1/pools/${pool}/agents/worker/lease`, { max: 1, waitMs: 0 });
  expect(leased.body.tasks.map((t: any) => t.id)).toEqual([submitted.body.id]);
  const done = await api("POST", `/v1/tasks/${submitted.body.id}/complete`, { leaseToken: leased.body.tasks[0].leaseToken, result });
  expect(done.status).toBe(200);
  await filled(pool);
  return submitted.body;
}

/** Waits until the pool has no cache fill waiting. */
async function filled(pool: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const metrics = await api("GET", "/metrics");
    const line = (metrics.body as string).split("\n").find((l) => l.startsWith(`daa_cache_fills_total{pool="${pool}"`) && l.includes('result="ok"'));
    if (line && Number(line.split(" ").pop()) > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no cache fill in pool ${pool}`);
}

async function stats(pool: string): Promise<any> {
  return (await api("GET", `/v1/pools/${pool}`)).body;
}

describe("the exact output cache", () => {
  it("answers a repeat from the cache with its level, runs no agent and writes no task row", async () => {
    const pool = await cachedPool();
    const first = await runOnce(pool, { payload: { prompt: "a cat", size: 512 } }, { text: "a cat, drawn" });
    const i = freshIsolate();
    const second = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { size: 512, prompt: "a cat" } }, i);
    expect(second.status).toBe(200);
    expect(second.headers.get("x-daa-cache")).toBe("hit-l2");
    expect(second.body).toMatchObject({ id: first.id, status: "succeeded", result: { text: "a cat, drawn" }, payload: { prompt: "a cat", size: 512 } });
    expect(second.body.cache).toMatchObject({ level: "l2", sourceTaskId: first.id });
    expect(second.body.cache.key).toMatch(/^default\.[0-9a-f]{64}$/);
    const third = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { prompt: "a cat", size: 512 } }, i);
    expect(third.headers.get("x-daa-cache")).toBe("hit-l1");
    expect(third.body.cache.level).toBe("l1");
    // One task in the pool, nothing queued for the agent.
    expect((await stats(pool)).queue).toMatchObject({ queued: 0, succeeded: 1 });
    expect(await api("POST", `/v1/pools/${pool}/agents/worker/lease`, { max: 1, waitMs: 0 }).then((r) => r.body.tasks)).toEqual([]);
    // GET /v1/tasks/:id finds the source task.
    expect((await api("GET", `/v1/tasks/${first.id}`)).body.result).toEqual({ text: "a cat, drawn" });
  });

  it("misses on another payload, another cacheVersion, cache: false, and for types that are not cacheable", async () => {
    const pool = await cachedPool();
    await runOnce(pool, { payload: { n: 1 } }, "one");
    const i = freshIsolate();
    const hit = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { n: 1 } }, i);
    expect(hit.status).toBe(200);
    for (const body of [{ payload: { n: 2 } }, { payload: { n: 1 }, cacheVersion: "v2" }]) {
      const res = await api("POST", "/v1/tasks", { type: `${pool}.gen`, ...body }, i);
      expect(res.status).toBe(201);
      expect(res.headers.get("x-daa-cache")).toBe("miss");
    }
    const optOut = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { n: 1 }, cache: false }, i);
    expect(optOut.status).toBe(201);
    expect(optOut.headers.get("x-daa-cache")).toBeNull();
    const other = await api("POST", "/v1/tasks", { type: `${pool}.other`, payload: { n: 1 } }, i);
    expect(other.status).toBe(201);
    expect(other.headers.get("x-daa-cache")).toBeNull();
  });

  it("caches a task submitted with cache: true whatever its type, and never a failed one", async () => {
    const pool = await cachedPool();
    const submitted = await api("POST", "/v1/tasks", { type: `${pool}.adhoc`, payload: { q: 1 }, cache: true });
    expect(submitted.headers.get("x-daa-cache")).toBe("miss");
    const [task] = (await api("POST", `/v1/pools/${pool}/agents/worker/lease`, { max: 1, waitMs: 0 })).body.tasks;
    expect((await api("POST", `/v1/tasks/${task.id}/fail`, { leaseToken: task.leaseToken, retryable: false, error: { message: "no" } })).status).toBe(200);
    const again = await api("POST", "/v1/tasks", { type: `${pool}.adhoc`, payload: { q: 1 }, cache: true }, freshIsolate());
    expect(again.status).toBe(201);
    expect(again.headers.get("x-daa-cache")).toBe("miss");
  });

  it("fills KV and L1 from L3 when KV no longer has the entry, and reads through levels in order", async () => {
    const pool = await cachedPool();
    const first = await runOnce(pool, { payload: { deep: true } }, { ok: 1 });
    const key = (await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { deep: true } }, freshIsolate())).body.cache.key;
    // As if KV had evicted it: only R2 (and the data center's Cache API, empty for this generation) remain.
    const kv = await env.CACHE_KV.list({ prefix: key });
    expect(kv.keys.length).toBe(1);
    await env.CACHE_KV.delete(kv.keys[0]!.name);
    const a = freshIsolate();
    const l3 = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { deep: true } }, a);
    expect(l3.headers.get("x-daa-cache")).toBe("hit-l3");
    expect(l3.body.id).toBe(first.id);
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { deep: true } }, a)).headers.get("x-daa-cache")).toBe("hit-l1");
    // KV was filled again on the way.
    for (let i = 0; i < 50 && (await env.CACHE_KV.list({ prefix: key })).keys.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { deep: true } }, freshIsolate())).headers.get("x-daa-cache")).toBe("hit-l2");
  });

  it("keeps L1 entries no longer than ttlMs.l1", async () => {
    const pool = await cachedPool({ ttlMs: { l1: 1000 } });
    await runOnce(pool, { payload: { t: 1 } }, 1);
    const i = freshIsolate();
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { t: 1 } }, i)).headers.get("x-daa-cache")).toBe("hit-l2");
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { t: 1 } }, i)).headers.get("x-daa-cache")).toBe("hit-l1");
    await new Promise((r) => setTimeout(r, 1100));
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { t: 1 } }, i)).headers.get("x-daa-cache")).toBe("hit-l2");
  });

  it("stores only ciphertext in KV and R2", async () => {
    const pool = await cachedPool();
    const secret = "plaintext-marker-7f3a";
    await runOnce(pool, { payload: { secret } }, { echo: secret });
    const key = (await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { secret } }, freshIsolate())).body.cache.key;
    const kv = await env.CACHE_KV.list({ prefix: key });
    const kvValue = await env.CACHE_KV.get(kv.keys[0]!.name, "text");
    const r2Value = await (await env.CACHE_R2.get(`cache/${key}`))!.text();
    for (const stored of [kvValue!, r2Value]) {
      expect(stored).toMatch(/^e1\.\d+\.[A-Za-z0-9_-]+$/);
      expect(stored).not.toContain(secret);
      expect(stored).not.toContain(btoa(secret).slice(0, 12));
    }
  });

  it("never answers one tenant with another tenant's result", async () => {
    const pool = await cachedPool();
    await runOnce(pool, { payload: { shared: "same" } }, { owner: "default" });
    const key = (await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { shared: "same" } }, freshIsolate())).body.cache.key;
    const other = await api("POST", "/v1/tenants/cache-b/keys", { name: "b", roles: ["client", "operator"] });
    expect(other.status).toBe(201);
    const token = other.body.key as string;
    const theirs = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { shared: "same" } }, { token, ...freshIsolate() });
    expect(theirs.status).toBe(201);
    expect(theirs.headers.get("x-daa-cache")).toBe("miss");
    expectError(await api("GET", `/v1/cache/${key}`, undefined, { token }), 404, "not_found");
    expectError(await api("DELETE", `/v1/cache/${key}`, undefined, { token }), 404, "not_found");
    // A value copied under the other tenant's key does not open for it.
    const r2Value = await (await env.CACHE_R2.get(`cache/${key}`))!.text();
    const forged = `cache-b.${key.split(".")[1]}`;
    await env.CACHE_R2.put(`cache/${forged}`, r2Value, { customMetadata: { expiresAt: String(Date.now() + 60_000) } });
    const again = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { shared: "same" } }, { token, ...freshIsolate() });
    expect(again.headers.get("x-daa-cache")).toBe("miss");
  });

  it("reads an entry, deletes it from every level, and purges by tags and by type and version", async () => {
    const pool = await cachedPool();
    const a = await runOnce(pool, { payload: { p: "a" }, cacheTags: ["news", "en"] }, "A");
    await runOnce(pool, { payload: { p: "b" }, cacheTags: ["sport"] }, "B");
    await runOnce(pool, { payload: { p: "c" }, cacheVersion: "v1" }, "C");
    const i = freshIsolate();
    const hitA = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { p: "a" } }, i);
    const entry = await api("GET", `/v1/cache/${hitA.body.cache.key}`, undefined, i);
    expect(entry.status).toBe(200);
    expect(entry.body).toMatchObject({ key: hitA.body.cache.key, type: `${pool}.gen`, result: "A", tags: ["news", "en"], sourceTaskId: a.id, cacheVersion: "" });
    expect(Date.parse(entry.body.expiresAt) - Date.parse(entry.body.createdAt)).toBe(604_800_000);

    expect((await api("POST", "/v1/cache/purge", { tags: ["en", "nothing"] }, i)).body).toEqual({ purged: 1 });
    expectError(await api("GET", `/v1/cache/${hitA.body.cache.key}`, undefined, i), 404, "not_found");
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { p: "a" } }, i)).status).toBe(201);
    expect(await env.CACHE_R2.get(`cache/${hitA.body.cache.key}`)).toBeNull();

    const hitB = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { p: "b" } }, i);
    expect(hitB.status).toBe(200);
    expect((await api("DELETE", `/v1/cache/${hitB.body.cache.key}`, undefined, i)).body).toEqual({ purged: 1 });
    expect((await api("DELETE", `/v1/cache/${hitB.body.cache.key}`, undefined, i)).body).toEqual({ purged: 0 });
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { p: "b" } }, i)).status).toBe(201);

    expect((await api("POST", "/v1/cache/purge", { type: `${pool}.gen`, cacheVersion: "v2" }, i)).body).toEqual({ purged: 0 });
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { p: "c" }, cacheVersion: "v1" }, i)).status).toBe(200);
    expect((await api("POST", "/v1/cache/purge", { type: `${pool}.gen`, cacheVersion: "v1" }, i)).body).toEqual({ purged: 1 });
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { p: "c" }, cacheVersion: "v1" }, i)).status).toBe(201);
  });

  it(`reaches another isolate's L1 within ${GENERATION_FRESH_MS} ms of a purge`, async () => {
    const pool = await cachedPool();
    await runOnce(pool, { payload: { far: 1 }, cacheTags: ["far"] }, "far");
    const a = freshIsolate();
    const b = freshIsolate();
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { far: 1 } }, a)).headers.get("x-daa-cache")).toBe("hit-l2");
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { far: 1 } }, a)).headers.get("x-daa-cache")).toBe("hit-l1");
    const purgedAt = Date.now();
    expect((await api("POST", "/v1/cache/purge", { tags: ["far"] }, b)).body).toEqual({ purged: 1 });
    // The purging isolate misses at once; the other one may serve its L1 copy until its generation is refreshed.
    expect((await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { far: 1 }, cache: true, cacheVersion: "other" }, b)).status).toBe(201);
    await new Promise((r) => setTimeout(r, Math.max(0, GENERATION_FRESH_MS - (Date.now() - purgedAt)) + 50));
    const after = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { far: 1 } }, a);
    expect(after.status).toBe(201);
    expect(after.headers.get("x-daa-cache")).toBe("miss");
  });

  it("answers a batch with hits and misses in input order", async () => {
    const pool = await cachedPool();
    const first = await runOnce(pool, { payload: { b: 1 } }, "one");
    const res = await api("POST", "/v1/tasks/batch", { tasks: [{ type: `${pool}.gen`, payload: { b: 2 } }, { type: `${pool}.gen`, payload: { b: 1 } }, { type: `${pool}.x` }] }, freshIsolate());
    expect(res.status).toBe(201);
    expect(res.body.tasks[0]).toMatchObject({ status: "queued" });
    expect(res.body.tasks[0].cache).toBeUndefined();
    expect(res.body.tasks[1]).toMatchObject({ id: first.id, status: "succeeded", result: "one", cache: { level: "l2" } });
    expect(res.body.tasks[2]).toMatchObject({ status: "queued" });
  });

  it("fills the cache for a task a drain moved to another shard", async () => {
    const pool = await cachedPool();
    const submitted = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { moved: true } });
    expect(submitted.headers.get("x-daa-cache")).toBe("miss");
    expect((await api("POST", `/v1/pools/${pool}/shards`, {})).status).toBe(201);
    expect((await api("POST", `/v1/pools/${pool}/shards/0/drain`)).status).toBe(200);
    for (let i = 0; i < 100; i++) {
      const shards = (await api("GET", `/v1/pools/${pool}/shards`)).body.shards;
      if (shards.find((s: any) => s.id === "1")?.queue.queued === 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    let task: any;
    for (let i = 0; i < 100 && !task; i++) {
      [task] = (await api("POST", `/v1/pools/${pool}/agents/worker/lease`, { max: 1, waitMs: 100 })).body.tasks;
    }
    expect(task.id).toBe(submitted.body.id);
    expect(task.shard).toBe("1");
    expect((await api("POST", `/v1/tasks/${task.id}/complete`, { leaseToken: task.leaseToken, result: "moved" })).status).toBe(200);
    await filled(pool);
    const again = await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { moved: true } }, freshIsolate());
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: task.id, result: "moved" });
  });

  it("counts hits, misses and fills in /metrics and records hits in the audit chain", async () => {
    const pool = await cachedPool();
    await runOnce(pool, { payload: { m: 1 } }, "m");
    const i = freshIsolate();
    await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { m: 1 } }, i);
    await api("POST", "/v1/tasks", { type: `${pool}.gen`, payload: { m: 1 } }, i);
    await new Promise((r) => setTimeout(r, 1300));
    const text = (await api("GET", "/metrics")).body as string;
    const value = (outcome: string) => Number(text.split("\n").find((l) => l.startsWith(`daa_cache_lookups_total{pool="${pool}",type="${pool}.gen",outcome="${outcome}"}`))?.split(" ").pop());
    expect(value("miss")).toBe(1);
    expect(value("hit-l2")).toBe(1);
    expect(value("hit-l1")).toBe(1);
    const audit = await api("GET", "/v1/audit?tenant=default&limit=200");
    expect(audit.status).toBe(200);
    const targets = (audit.body.records as any[]).map((r) => r.target as string);
    expect(targets.some((t) => t.includes("(cache hit-l1 of "))).toBe(true);
  });

  it("refuses bad cache input with 400 and changes nothing", async () => {
    const pool = await cachedPool();
    const tooMany = Array.from({ length: 17 }, (_, n) => `t${n}`);
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.gen`, cacheTags: tooMany }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.gen`, cacheTags: [""] }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.gen`, cache: "yes" }), 400, "invalid_request");
    expectError(await api("POST", "/v1/cache/purge", {}), 400, "invalid_request");
    expectError(await api("POST", "/v1/cache/purge", { tags: [] }), 400, "invalid_request");
    expectError(await api("PUT", `/v1/pools/${pool}/config`, { cache: { ttlMs: { l2: 59_999 } } }), 400, "invalid_request");
    expectError(await api("GET", "/v1/cache/not-a-key"), 404, "not_found");
    expect((await stats(pool)).queue.queued).toBe(0);
    // A payload RFC 8785 has no canonical form for (a number JSON reads as Infinity) is not cacheable: it runs as usual.
    const infinite = await api("POST", "/v1/tasks/batch", `{"tasks":[{"type":"${pool}.gen","payload":{"n":1e999}}]}`);
    expect(infinite.status).toBe(201);
    expect(infinite.headers.get("x-daa-cache")).toBeNull();
    // A lone surrogate is refused by validation, before any cache lookup.
    expect((await api("POST", "/v1/tasks/batch", `{"tasks":[{"type":"${pool}.gen","payload":{"s":"\\ud800"}}]}`)).status).not.toBe(500);
    expect((await stats(pool)).queue.queued).toBeLessThanOrEqual(2);
  });
});
