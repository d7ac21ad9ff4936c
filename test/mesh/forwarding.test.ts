import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { api, freshPool, submit } from "../helpers";

/**
 * An agent serves every shard of its pool, and tasks move between shards when one drains. Whatever the
 * interleaving of submits, concurrent leases by several agents on every shard, drains, additions and settlements
 * (completes with current and stale tokens, by the ids the tasks were given), each task has at most one accepted
 * result, and none is lost: every task submitted is found by its id, and the pool's counts add up to them.
 */

type Op =
  | { kind: "submit"; n: number }
  | { kind: "lease"; agent: number; max: number }
  | { kind: "complete"; pick: number; stale: boolean }
  | { kind: "drain"; pick: number }
  | { kind: "add" }
  | { kind: "alarms" };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("submit" as const), n: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("lease" as const), agent: fc.integer({ min: 0, max: 2 }), max: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("complete" as const), pick: fc.nat(), stale: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("drain" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("add" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("alarms" as const) }) },
);

interface Lease {
  id: string;
  token: string;
}

async function runAlarms(pool: string): Promise<void> {
  const shards = (await api("GET", `/v1/pools/${pool}/shards`)).body.shards as { id: string }[];
  for (const s of shards) {
    const stub = env.POOL.getByName(s.id === "0" ? pool : `${pool}#${s.id}`);
    for (let i = 0; i < 5 && (await runDurableObjectAlarm(stub)); i++);
  }
}

describe("forwarding under concurrent pulls", () => {
  it("keeps one accepted result per task and loses none (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { minLength: 4, maxLength: 14 }), async (rounds) => {
        const pool = freshPool("fw");
        const submitted: string[] = [await submit(pool).then((t) => t.id)];
        expect((await api("POST", `/v1/pools/${pool}/shards`, {})).status).toBe(201);
        for (let a = 0; a < 3; a++) expect((await api("POST", `/v1/pools/${pool}/agents`, { agentId: `a${a}`, maxConcurrency: 100 })).status).toBe(201);
        const leases: Lease[] = [];
        const accepted = new Map<string, number>();
        const accept = (id: string) => accepted.set(id, (accepted.get(id) ?? 0) + 1);
        // The ops of a round run at once: leases race each other, completes race leases and drains.
        for (const round of rounds) {
          await Promise.all(
            round.map(async (o) => {
              switch (o.kind) {
                case "submit": {
                  const res = await api("POST", "/v1/tasks/batch", { tasks: Array.from({ length: o.n }, () => ({ type: `${pool}.work` })) });
                  expect(res.status).toBe(201);
                  submitted.push(...res.body.tasks.map((t: any) => t.id));
                  return;
                }
                case "lease": {
                  const res = await api("POST", `/v1/pools/${pool}/agents/a${o.agent}/lease`, { max: o.max });
                  expect(res.status).toBe(200);
                  for (const t of res.body.tasks) leases.push({ id: t.id, token: t.leaseToken });
                  return;
                }
                case "complete": {
                  if (leases.length === 0) return;
                  const lease = leases[o.pick % leases.length]!;
                  const token = o.stale ? `${lease.token.slice(0, -2)}xx` : lease.token;
                  const res = await api("POST", `/v1/tasks/${lease.id}/complete`, { leaseToken: token, result: { by: "test" } });
                  expect([200, 409]).toContain(res.status);
                  if (res.status === 200) accept(lease.id);
                  return;
                }
                case "drain": {
                  const shards = (await api("GET", `/v1/pools/${pool}/shards`)).body.shards.filter((s: any) => s.state === "active");
                  const target = shards[o.pick % shards.length];
                  const res = await api("POST", `/v1/pools/${pool}/shards/${target.id}/drain`);
                  expect([200, 409]).toContain(res.status);
                  return;
                }
                case "add":
                  expect((await api("POST", `/v1/pools/${pool}/shards`, {})).status).toBe(201);
                  return;
                case "alarms":
                  await runAlarms(pool);
              }
            }),
          );
        }
        // Completing every lease again: a task already accepted refuses (409), one not yet accepted may take one.
        await runAlarms(pool);
        for (const lease of leases) {
          const res = await api("POST", `/v1/tasks/${lease.id}/complete`, { leaseToken: lease.token, result: { by: "final" } });
          expect([200, 409]).toContain(res.status);
          if (res.status === 200) accept(lease.id);
        }
        for (const [id, n] of accepted) expect(n, `task ${id} accepted ${n} results`).toBe(1);
        const statuses = await Promise.all(submitted.map(async (id) => (await api("GET", `/v1/tasks/${id}`)).body));
        for (const [i, t] of statuses.entries()) expect(t.id, `task ${submitted[i]} is lost`).toBe(submitted[i]);
        for (const t of statuses) expect(t.status === "succeeded").toBe(accepted.has(t.id));
        const queue = (await api("GET", `/v1/pools/${pool}`)).body.queue;
        expect(Object.values(queue).reduce((a: number, b) => a + (b as number), 0)).toBe(submitted.length);
      }),
      { numRuns: 15 },
    );
  }, 120_000);
});
