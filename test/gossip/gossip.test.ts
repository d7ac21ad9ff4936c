import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Principal, TaskInput } from "../../contract/records";
import { crdtWasm } from "../../lib/wasm/crdt-module";
import { api, freshPool, submit } from "../helpers";

/**
 * The shared state of a sharded pool (API.md, "Shards, routing and shared state"): real events feed each shard's
 * SemanticStateCRDT, shards exchange it by anti-entropy (digest first, then the sections the other lacks), merged in
 * the WebAssembly module inside the Durable Object, and after a partition heals every shard reaches the same
 * digest within a bound per topology. Rounds are stepped with the test hook (DAA_TEST_HOOKS=1): each shard runs one
 * round, in shard order, per step.
 */

const ADMIN: Principal = { tenant: "default", allTenants: true, actor: "admin", fleetOperator: true, agentOnly: false, certVerified: false };
const shardOf = (pool: string, id: number) => env.POOL.getByName(id === 0 ? pool : `${pool}#${id}`);

function input(extra: Partial<TaskInput> = {}): TaskInput {
  return { type: "g.work", payload: "{}", priority: 5, requires: { capabilities: [], cpu: 0, memoryMb: 0, gpu: 0 }, idempotencyKey: null, maxAttempts: 3, timeoutMs: 30_000, delayMs: 0, dependsOn: [], ...extra };
}

async function shardedPool(n: number, topology: string): Promise<string> {
  const pool = freshPool("g");
  await submit(pool, { payload: { imageId: "img-base", embedding: [1, 0, 0] } });
  // Rounds are stepped by the test, not by the alarm.
  expect((await api("PUT", `/v1/pools/${pool}/config`, { gossip: { topology, intervalMs: 600_000, fanout: 2 } })).status).toBe(200);
  for (let i = 1; i < n; i++) expect((await api("POST", `/v1/pools/${pool}/shards`, {})).status).toBe(201);
  return pool;
}

async function state(pool: string): Promise<{ shards: any[]; converged: boolean }> {
  const res = await api("GET", `/v1/pools/${pool}/state`);
  expect(res.status).toBe(200);
  return res.body;
}

async function step(pool: string, n: number): Promise<void> {
  for (let id = 0; id < n; id++) expect(await shardOf(pool, id).gossipTestHook(null, true)).not.toBeNull();
}

async function partition(pool: string, groups: number[][]): Promise<void> {
  for (const group of groups) {
    const others = groups.flat().filter((id) => !group.includes(id));
    for (const id of group) await shardOf(pool, id).gossipTestHook(others, false);
  }
}

/** Rounds until every shard has the same digest (at most `limit`). */
async function roundsToConverge(pool: string, n: number, limit: number): Promise<number> {
  for (let round = 1; round <= limit; round++) {
    await step(pool, n);
    if ((await state(pool)).converged) return round;
  }
  return Infinity;
}

describe("the shared state of a sharded pool", () => {
  it("is fed by real events: queued tasks, image mappings of succeeded tasks, embeddings, agents' loads", async () => {
    const pool = freshPool("g");
    const reg = await api("POST", `/v1/pools/${pool}/agents`, { agentId: "a1", maxConcurrency: 10 });
    expect(reg.status).toBe(201);
    const t = await submit(pool, { payload: { imageId: "img-7", embedding: [0.5, -1, 2], url: "https://x" } });
    await submit(pool, { payload: { text: "no image" } });
    let s = (await state(pool)).shards[0];
    expect(s.sizes).toEqual({ image_embeddings: 1, content_mappings: 0, agent_loads: 0, task_queue: 2 });
    const leased = (await api("POST", `/v1/pools/${pool}/agents/a1/lease`, { max: 1 })).body.tasks;
    expect(leased[0].id).toBe(t.id);
    expect((await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: leased[0].leaseToken, result: { caption: "a cat" } })).status).toBe(200);
    expect((await api("POST", `/v1/pools/${pool}/agents/a1/heartbeat`, { load: { currentLoad: 0.25 } })).status).toBe(200);
    s = (await state(pool)).shards[0];
    expect(s.sizes).toEqual({ image_embeddings: 1, content_mappings: 1, agent_loads: 1, task_queue: 1 });
    expect(s.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(s.vclock)).toEqual(["0"]);
  });

  it("merges in the WebAssembly module inside the coordinator", async () => {
    const pool = await shardedPool(2, "star");
    await shardOf(pool, 1).submit(ADMIN, [input({ imageId: "img-1", embedding: [0, 1] })]);
    await step(pool, 2);
    const summary = await shardOf(pool, 0).sharedState();
    expect(summary.merges).toBeGreaterThan(0);
    expect(summary.rounds).toBeGreaterThan(0);
    expect(summary.bytes).toBeGreaterThan(0);
    expect(crdtWasm().module).toBeInstanceOf(WebAssembly.Module);
    const { shards, converged } = await state(pool);
    expect(converged).toBe(true);
    expect(shards.map((s) => s.sizes.image_embeddings)).toEqual([2, 2]);
    expect(shards[0].vclock).toEqual(shards[1].vclock);
  });

  for (const [topology, n, bound] of [["star", 4, 2], ["ring", 4, 2], ["ring", 6, 3], ["mesh", 4, 6], ["mesh", 6, 8]] as const) {
    it(`${topology} over ${n} shards: a healed partition converges within ${bound} rounds`, async () => {
      const pool = await shardedPool(n, topology);
      expect((await api("GET", `/v1/pools/${pool}/shards`)).body.topology).toBe(topology);
      await step(pool, n);
      expect((await state(pool)).converged).toBe(true);
      const half = Math.floor(n / 2);
      const left = Array.from({ length: half }, (_, i) => i);
      const right = Array.from({ length: n - half }, (_, i) => half + i);
      await partition(pool, [left, right]);
      // Each side changes its state: tasks queued with images and embeddings on every shard; rounds during the
      // partition spread them within a side only.
      for (const id of left) await shardOf(pool, id).submit(ADMIN, [input({ imageId: `img-${id}`, embedding: [id, 1] }), input()]);
      // Ring and star spread within a side in 3 rounds; a mesh draws its peers at random each round (some of them
      // across the partition, so refused), so it steps until the side has it, a bounded number of rounds.
      const spread = async () => (await state(pool)).shards.filter((s, id) => left.includes(id)).every((s) => s.sizes.image_embeddings === 1 + left.length);
      for (let i = 0; i < 3; i++) await step(pool, n);
      for (let i = 3; topology === "mesh" && i < 30 && !(await spread()); i++) await step(pool, n);
      for (const id of right) await shardOf(pool, id).submit(ADMIN, [input({ imageId: `img-${id}`, embedding: [id, 1] }), input()]);
      const during = await state(pool);
      expect(during.converged).toBe(false);
      for (const id of left) expect(during.shards[id].sizes.image_embeddings).toBe(1 + left.length);
      // The right side did not run a round since it changed: each of its shards knows only its own change.
      for (const id of right) expect(during.shards[id].sizes.image_embeddings).toBe(2);
      await partition(pool, [[...left, ...right]]);
      const rounds = await roundsToConverge(pool, n, bound);
      expect(rounds).toBeLessThanOrEqual(bound);
      const { shards } = await state(pool);
      expect(new Set(shards.map((s) => s.digest)).size).toBe(1);
      expect(shards[0].sizes.image_embeddings).toBe(n + 1);
      expect(shards[0].sizes.task_queue).toBe(1 + 2 * n);
    });
  }

  it("the test hooks answer nothing without DAA_TEST_HOOKS, and a pool with one shard does not gossip", async () => {
    const pool = freshPool("g");
    await submit(pool);
    const s = await shardOf(pool, 0).sharedState();
    expect(s.rounds).toBe(0);
    expect((await state(pool)).converged).toBe(true);
  });
});
