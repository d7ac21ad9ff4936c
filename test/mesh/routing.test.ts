import { describe, expect, it } from "vitest";
import { api, freshPool, submit } from "../helpers";

/**
 * Routing over real shards, with the test-only delay hook (src/mesh/calls.ts: DAA_TEST_HOOKS=1 and a header
 * `x-daa-test-shard-delay`) making chosen shards farther away: new tasks go where they start soonest, move away
 * from a shard that became slow and come back once it recovers, and spread when the best shard's queue fills.
 */

const DELAY = "x-daa-test-shard-delay";

async function shardedPool(shards: number): Promise<string> {
  const pool = freshPool("rt");
  await submit(pool);
  for (let i = 1; i < shards; i++) expect((await api("POST", `/v1/pools/${pool}/shards`, {})).status).toBe(201);
  return pool;
}

/** Submits one task with the given delays, then an agent takes and completes whatever is queued (a drained pool). */
async function submitAndDrain(pool: string, delays: string): Promise<number> {
  const res = await api("POST", "/v1/tasks", { type: `${pool}.work` }, { headers: { [DELAY]: delays } });
  expect(res.status).toBe(201);
  // Every call of the client sees the same distances (the router measures round trips on all of them).
  const leased = (await api("POST", `/v1/pools/${pool}/agents/drainer/lease`, { max: 50 }, { headers: { [DELAY]: delays } })).body.tasks as any[];
  if (leased.length > 0) {
    const settled = await api("POST", "/v1/tasks/settle", { items: leased.map((t) => ({ action: "complete", id: t.id, leaseToken: t.leaseToken, result: null })) }, { headers: { [DELAY]: delays } });
    expect(settled.status).toBe(200);
  }
  return Number(res.headers.get("x-daa-shard"));
}

const share = (picks: number[], shard: number) => picks.filter((p) => p === shard).length / picks.length;

describe("routing by measured latency", () => {
  it("sends most tasks to the nearest shard, away from it while it is slow, and back once it recovers", async () => {
    const pool = await shardedPool(3);
    expect((await api("POST", `/v1/pools/${pool}/agents`, { agentId: "drainer", maxConcurrency: 1000 })).status).toBe(201);
    const phase = async (delays: string, n: number) => {
      const picks: number[] = [];
      for (let i = 0; i < n; i++) picks.push(await submitAndDrain(pool, delays));
      return picks;
    };
    const near = await phase("1=20,2=50", 25);
    expect(share(near, 0)).toBeGreaterThanOrEqual(0.8);
    const slow = await phase("0=60,1=20,2=50", 25);
    expect(share(slow.slice(5), 1)).toBeGreaterThanOrEqual(0.8);
    // Shard 0's estimate goes stale without traffic; the router probes it and finds it near again.
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    const back = await phase("1=20,2=50", 25);
    expect(share(back.slice(5), 0)).toBeGreaterThanOrEqual(0.8);
    const metrics = (await api("GET", "/metrics")).body as string;
    expect(metrics).toMatch(new RegExp(`daa_routing_decisions_total\\{pool="${pool}",shard="0",reason="latency"\\} \\d+`));
  }, 60_000);

  it("never sends everything to one shard when its queue fills", async () => {
    const pool = await shardedPool(3);
    const picks: number[] = [];
    for (let i = 0; i < 60; i++) {
      const res = await api("POST", "/v1/tasks", { type: `${pool}.work` }, { headers: { [DELAY]: "1=5,2=10" } });
      picks.push(Number(res.headers.get("x-daa-shard")));
    }
    const counts = [0, 1, 2].map((s) => picks.filter((p) => p === s).length);
    expect(counts.every((n) => n > 0)).toBe(true);
    expect(counts[0]).toBeGreaterThan(counts[2]!);
  }, 60_000);

  it("ignores the delay header without the test hooks variable", async () => {
    const { testDelays } = await import("../../src/mesh/calls");
    const req = new Request("https://x", { headers: { [DELAY]: "1=20" } });
    expect(testDelays({}, req)).toBeNull();
    expect(testDelays({ DAA_TEST_HOOKS: "1" }, req)).toEqual(new Map([[1, 20]]));
  });
});
