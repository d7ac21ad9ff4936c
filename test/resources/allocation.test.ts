import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { PoolCoordinator } from "../../durable-objects/pool-coordinator";
import type { PoolCore } from "../../durable-objects/pool-coordinator/core";
import { api, freshPool, lease, poolStub, PoolClock, register, submit } from "../helpers";

/**
 * Resources are allocated (docs/resources.md): the requirements of the tasks an agent holds add up to at most its
 * cpu, memoryMb and gpu, on the polling path (POST .../lease) and the push path (a dispatch round), and a task
 * that does not fit what an agent has left is skipped for it without holding back the tasks that fit.
 */

const GPU = { gpu: 1 };

type Inner = { core: PoolCore; ctx: DurableObjectState; clock: () => number };

/** A push round over these agents, each given `credits`, at the pool's clock. */
async function push(pool: string, agents: readonly string[], credits: number): Promise<Map<string, { id: string }[]>> {
  return runInDurableObject(poolStub(pool), (c: PoolCoordinator) => {
    const inner = c as unknown as Inner;
    inner.ctx.storage.transactionSync(() => agents.forEach((id) => inner.core.agents.addCredits(id, credits)));
    return inner.ctx.storage.transactionSync(() => inner.core.dispatch(new Set(agents), new Map(), inner.clock()));
  });
}

interface Held {
  [column: string]: SqlStorageValue;
  agent_id: string;
  n: number;
  cpu: number;
  memory_mb: number;
  gpu: number;
  max_cpu: number;
  max_memory_mb: number;
  max_gpu: number;
  max_concurrency: number;
  state: string;
}

/** What each agent holds, summed from its leased rows, with its resources. */
async function held(pool: string): Promise<Held[]> {
  return runInDurableObject(poolStub(pool), (c: PoolCoordinator) =>
    (c as unknown as Inner).ctx.storage.sql
      .exec<Held>(
        `SELECT a.agent_id, count(t.seq) AS n, coalesce(sum(l.cpu), 0) AS cpu, coalesce(sum(l.memory_mb), 0) AS memory_mb, coalesce(sum(l.gpu), 0) AS gpu,
           a.cpu AS max_cpu, a.memory_mb AS max_memory_mb, a.gpu AS max_gpu, a.max_concurrency, a.state
         FROM agents a LEFT JOIN tasks t ON t.agent_id = a.agent_id AND t.status = 'leased' LEFT JOIN lanes l ON l.id = t.lane
         GROUP BY a.agent_id ORDER BY a.agent_id`,
      )
      .toArray(),
  );
}

/** Queued tasks that would fit what this agent has free. */
async function fittingQueued(pool: string, agentId: string): Promise<number> {
  return runInDurableObject(poolStub(pool), (c: PoolCoordinator) =>
    (c as unknown as Inner).ctx.storage.sql
      .exec<{ n: number }>(
        `WITH h AS (SELECT coalesce(sum(l.cpu), 0) AS cpu, coalesce(sum(l.memory_mb), 0) AS mem, coalesce(sum(l.gpu), 0) AS gpu
                    FROM tasks t JOIN lanes l ON l.id = t.lane WHERE t.status = 'leased' AND t.agent_id = ?1),
              a AS (SELECT cpu, memory_mb, gpu FROM agents WHERE agent_id = ?1)
         SELECT count(*) AS n FROM tasks t JOIN lanes l ON l.id = t.lane, h, a
         WHERE t.status = 'queued' AND l.cpu <= a.cpu - h.cpu AND l.memory_mb <= a.memory_mb - h.mem AND l.gpu <= a.gpu - h.gpu`,
        agentId,
      )
      .one().n,
  );
}

describe("resource allocation", () => {
  it("polling: a gpu:1 agent with concurrency 8 holds one gpu:1 task, and still takes the tasks that fit", async () => {
    const pool = freshPool("alloc-poll");
    const gpuTasks = [];
    for (let i = 0; i < 3; i++) gpuTasks.push(await submit(pool, { requires: GPU, priority: 9 }));
    const plain = [await submit(pool), await submit(pool)];
    await register(pool, "g1", { resources: { cpu: 8, memoryMb: 8192, gpu: 1 }, maxConcurrency: 8 });
    const first = await lease(pool, "g1", 10);
    expect(first.map((t) => t.id)).toEqual([gpuTasks[0].id, plain[0].id, plain[1].id]);
    expect(await lease(pool, "g1", 10)).toEqual([]);
    // Settling the GPU task frees the GPU: the next one is leased.
    const done = await api("POST", `/v1/tasks/${first[0].id}/complete`, { leaseToken: first[0].leaseToken, result: {} });
    expect(done.status).toBe(200);
    expect((await lease(pool, "g1", 10)).map((t) => t.id)).toEqual([gpuTasks[1].id]);
  });

  it("polling: cpu and memory add up too, and a task too big for what is left waits for a settle", async () => {
    const pool = freshPool("alloc-mem");
    const a = await submit(pool, { requires: { cpu: 3, memoryMb: 1000 } });
    const b = await submit(pool, { requires: { cpu: 2, memoryMb: 3000 } });
    const c = await submit(pool, { requires: { cpu: 1, memoryMb: 1000 } });
    await register(pool, "w", { resources: { cpu: 4, memoryMb: 3500 }, maxConcurrency: 10 });
    // a (3 cpu) leaves 1 cpu: b (2 cpu) does not fit, c does.
    expect((await lease(pool, "w", 10)).map((t) => t.id)).toEqual([a.id, c.id]);
    const rows = await held(pool);
    expect(rows[0]).toMatchObject({ n: 2, cpu: 4, memory_mb: 2000 });
    expect(b.status).toBe("queued");
  });

  it("push: two gpu:1 agents with concurrency 8 get one gpu:1 task each, and the plain tasks besides", async () => {
    const pool = freshPool("alloc-push");
    const clock = await new PoolClock(pool).install();
    for (let i = 0; i < 4; i++) await submit(pool, { requires: GPU, priority: 9 });
    for (let i = 0; i < 4; i++) await submit(pool);
    await register(pool, "g1", { resources: { cpu: 8, memoryMb: 8192, gpu: 1 }, maxConcurrency: 8 });
    await register(pool, "g2", { resources: { cpu: 8, memoryMb: 8192, gpu: 1 }, maxConcurrency: 8 });
    const pushed = await push(pool, ["g1", "g2"], 8);
    expect([...pushed.values()].flat()).toHaveLength(6);
    for (const row of await held(pool)) expect(row.gpu).toBe(1);
    expect(await fittingQueued(pool, "g1")).toBe(0);
    // A lease expiry frees the GPU it held (the agent keeps nothing of an expired lease).
    await clock.advance(31_000);
    expect((await held(pool)).every((r) => r.n === 0)).toBe(true);
    // Their backoff over (at most 5 minutes), they are queued again.
    await clock.advance(400_000);
    // So long without a heartbeat marks the agents failed: they register again (a restarted process).
    for (const id of ["g1", "g2"]) await register(pool, id, { resources: { cpu: 8, memoryMb: 8192, gpu: 1 }, maxConcurrency: 8 });
    const again = await push(pool, ["g1", "g2"], 8);
    expect([...again.values()].flat()).toHaveLength(6);
    for (const row of await held(pool)) expect(row.gpu).toBe(1);
  });

  it("property: any sequence of leases, pushes, settles and expiries keeps every agent within its resources", async () => {
    const kinds = [GPU, { cpu: 1, memoryMb: 512 }, { cpu: 2 }, {}, { gpu: 1, cpu: 2 }] as const;
    const op = fc.oneof(
      fc.record({ kind: fc.constant("submit" as const), req: fc.integer({ min: 0, max: kinds.length - 1 }), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant("poll" as const), agent: fc.integer({ min: 0, max: 2 }), max: fc.integer({ min: 1, max: 10 }) }),
      fc.record({ kind: fc.constant("push" as const), credits: fc.integer({ min: 1, max: 8 }) }),
      fc.record({ kind: fc.constant("settle" as const), fail: fc.boolean(), pick: fc.nat() }),
      fc.record({ kind: fc.constant("expire" as const) }),
    );
    const agents = [
      { id: "gpu", resources: { cpu: 4, memoryMb: 4096, gpu: 1 }, maxConcurrency: 8 },
      { id: "cpu", resources: { cpu: 2, memoryMb: 1024, gpu: 0 }, maxConcurrency: 3 },
      { id: "big", resources: { cpu: 8, memoryMb: 8192, gpu: 2 }, maxConcurrency: 8 },
    ];
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), async (ops) => {
        const pool = freshPool("alloc-prop");
        const clock = await new PoolClock(pool).install();
        for (const a of agents) await register(pool, a.id, { resources: a.resources, maxConcurrency: a.maxConcurrency });
        const holding: { id: string; leaseToken: string }[] = [];
        for (const o of ops) {
          if (o.kind === "submit") {
            for (let i = 0; i < o.n; i++) await submit(pool, { requires: kinds[o.req], timeoutMs: 5_000 });
          } else if (o.kind === "poll") {
            const agent = agents[o.agent]!;
            const got = await lease(pool, agent.id, o.max);
            holding.push(...got);
            const me = (await held(pool)).find((r) => r.agent_id === agent.id)!;
            // Fewer than asked with room left: nothing queued fits what the agent has free. (An agent that missed
            // its heartbeats through the expiries is failed, then recovering: it is given nothing until running.)
            if (me.state === "running" && got.length < o.max && me.n < me.max_concurrency) expect(await fittingQueued(pool, agent.id)).toBe(0);
          } else if (o.kind === "push") {
            holding.push(...([...(await push(pool, agents.map((a) => a.id), o.credits)).values()].flat() as { id: string; leaseToken: string }[]));
          } else if (o.kind === "settle" && holding.length > 0) {
            const [t] = holding.splice(o.pick % holding.length, 1);
            const res = o.fail
              ? await api("POST", `/v1/tasks/${t!.id}/fail`, { leaseToken: t!.leaseToken, error: { message: "x" } })
              : await api("POST", `/v1/tasks/${t!.id}/complete`, { leaseToken: t!.leaseToken, result: {} });
            expect([200, 409]).toContain(res.status);
          } else if (o.kind === "expire") {
            await clock.advance(6_000);
            holding.length = 0;
          }
          for (const r of await held(pool)) {
            expect(r.cpu).toBeLessThanOrEqual(r.max_cpu);
            expect(r.memory_mb).toBeLessThanOrEqual(r.max_memory_mb);
            expect(r.gpu).toBeLessThanOrEqual(r.max_gpu);
            expect(r.n).toBeLessThanOrEqual(r.max_concurrency);
          }
        }
      }),
      { numRuns: 12 },
    );
  });
});
