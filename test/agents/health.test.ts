import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { breakerAllowance, afterOutcome } from "../../lib/breaker";
import { pick, utilization, type Candidate, type Strategy } from "../../durable-objects/pool-coordinator/agents/balancing";
import { agentTimer, dueActions, stateAfterHeartbeat } from "../../durable-objects/pool-coordinator/agents/health";
import { api, expectError, freshPool, lease, PoolClock, register, submit } from "../helpers";

const heartbeat = (pool: string, agentId: string) => api("POST", `/v1/pools/${pool}/agents/${agentId}/heartbeat`, {});
const agentOf = async (pool: string, agentId: string) => (await api("GET", `/v1/pools/${pool}/agents/${agentId}`)).body;

describe("agent health, driven by the pool's alarm", () => {
  it("detects a silent agent within missedHeartbeats x heartbeatIntervalMs and requeues its leases at once", async () => {
    const pool = freshPool("hb");
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool, { maxAttempts: 3 });
    await register(pool, "a1");
    await register(pool, "a2");
    const [l] = await lease(pool, "a1");
    await heartbeat(pool, "a2");
    // Measured detection: still running one millisecond before 3 x 5000 ms of silence, failed at it.
    await clock.advance(14_999);
    await heartbeat(pool, "a2");
    expect((await agentOf(pool, "a1")).state).toBe("running");
    await clock.advance(1);
    const failed = await agentOf(pool, "a1");
    expect(failed).toMatchObject({ state: "failed", inFlight: 0 });
    expect((await api("GET", `/v1/tasks/${t.id}`)).body).toMatchObject({ status: "queued", attempts: 1, error: { code: "agent_lost" } });
    expectError(await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken }), 409, "lease_lost");
    expect((await lease(pool, "a2")).map((x) => x.id)).toEqual([t.id]);
  });

  it("a heartbeat brings a failed agent to recovering, the next one back to running", async () => {
    const pool = freshPool("hb");
    const clock = await new PoolClock(pool).install();
    await register(pool, "a1");
    await clock.advance(15_000);
    expect((await agentOf(pool, "a1")).state).toBe("failed");
    expect((await heartbeat(pool, "a1")).body.state).toBe("recovering");
    expect(await lease(pool, "a1")).toEqual([]);
    expect((await heartbeat(pool, "a1")).body.state).toBe("running");
  });

  it("removes an agent that stays failed past failedAgentTtlMs", async () => {
    const pool = freshPool("hb");
    const clock = await new PoolClock(pool).install();
    await register(pool, "a1");
    await clock.advance(15_000);
    expect((await agentOf(pool, "a1")).state).toBe("failed");
    await clock.advance(300_000 - 15_000 - 1);
    expect((await agentOf(pool, "a1")).state).toBe("failed");
    await clock.advance(1);
    expectError(await api("GET", `/v1/pools/${pool}/agents/a1`), 404, "not_found");
  });

  it("a task that keeps killing its agents ends in the dead letter queue", async () => {
    const pool = freshPool("hb");
    const clock = await new PoolClock(pool).install();
    const t = await submit(pool, { maxAttempts: 2, timeoutMs: 3_600_000 });
    for (const agent of ["k1", "k2"]) {
      await register(pool, agent);
      expect((await lease(pool, agent)).map((x) => x.id)).toEqual([t.id]);
      await clock.advance(15_000);
    }
    expect((await api("GET", `/v1/tasks/${t.id}`)).body).toMatchObject({ status: "dead", attempts: 2, error: { code: "agent_lost" } });
  });

  it("applies new heartbeat settings from each agent's next heartbeat", async () => {
    const pool = freshPool("hb");
    const clock = await new PoolClock(pool).install();
    await register(pool, "a1");
    await api("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 60_000 });
    expect((await heartbeat(pool, "a1")).body.heartbeatIntervalMs).toBe(60_000);
    await clock.advance(179_999);
    expect((await agentOf(pool, "a1")).state).toBe("running");
    await clock.advance(1);
    expect((await agentOf(pool, "a1")).state).toBe("failed");
  });

  it("counts lease calls as signs of life", async () => {
    const pool = freshPool("hb");
    const clock = await new PoolClock(pool).install();
    await register(pool, "a1");
    await clock.advance(10_000);
    await lease(pool, "a1");
    await clock.advance(10_000);
    expect((await agentOf(pool, "a1")).state).toBe("running");
  });
});

describe("the circuit breaker", () => {
  it("opens after consecutive failures, half-opens after the cooldown, closes on a success", async () => {
    const pool = freshPool("cb");
    const clock = await new PoolClock(pool).install();
    await api("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 3_600_000, breaker: { failureThreshold: 3, cooldownMs: 10_000 } });
    await register(pool, "a1", { maxConcurrency: 5 });
    for (let i = 0; i < 6; i++) await submit(pool, { maxAttempts: 5 });
    for (const t of await lease(pool, "a1", 3)) {
      await api("POST", `/v1/tasks/${t.id}/fail`, { leaseToken: t.leaseToken, error: { message: "broken gpu" } });
    }
    expect((await agentOf(pool, "a1")).breaker).toBe("open");
    expect(await lease(pool, "a1", 5)).toEqual([]);
    const metrics: string = (await api("GET", "/metrics")).body;
    expect(metrics).toContain(`daa_agent_breaker{pool="${pool}",agent="a1",state="open"} 1`);
    await clock.advance(10_000);
    expect((await agentOf(pool, "a1")).breaker).toBe("half_open");
    const probe = await lease(pool, "a1", 5);
    expect(probe).toHaveLength(1);
    expect(await lease(pool, "a1", 5)).toEqual([]);
    await api("POST", `/v1/tasks/${probe[0].id}/complete`, { leaseToken: probe[0].leaseToken });
    expect((await agentOf(pool, "a1")).breaker).toBe("closed");
    expect(await lease(pool, "a1", 5)).toHaveLength(5);
  });

  it("opens again when the half-open probe fails", async () => {
    const pool = freshPool("cb");
    const clock = await new PoolClock(pool).install();
    await api("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 3_600_000, breaker: { failureThreshold: 1, cooldownMs: 5_000 } });
    await register(pool, "a1");
    await submit(pool, { maxAttempts: 5 });
    const [first] = await lease(pool, "a1");
    await api("POST", `/v1/tasks/${first.id}/fail`, { leaseToken: first.leaseToken });
    expect((await agentOf(pool, "a1")).breaker).toBe("open");
    await clock.advance(5_000);
    await clock.advance(5_000);
    const [probe] = await lease(pool, "a1");
    await api("POST", `/v1/tasks/${probe.id}/fail`, { leaseToken: probe.leaseToken });
    expect((await agentOf(pool, "a1")).breaker).toBe("open");
  });

  it("rules: thresholds, half-open allowance", () => {
    const config = { failureThreshold: 2, cooldownMs: 1000 };
    let b = { state: "closed" as const, failures: 0, until: null };
    const one = afterOutcome(b, false, 0, config);
    expect(one).toEqual({ state: "closed", failures: 1, until: null });
    expect(afterOutcome(one, false, 5, config)).toEqual({ state: "open", failures: 2, until: 1005 });
    expect(afterOutcome(one, true, 5, config)).toEqual({ state: "closed", failures: 0, until: null });
    expect(afterOutcome({ state: "half_open", failures: 2, until: null }, false, 7, config)).toEqual({ state: "open", failures: 3, until: 1007 });
    expect([breakerAllowance("open", 0), breakerAllowance("half_open", 0), breakerAllowance("half_open", 1), breakerAllowance("closed", 9)]).toEqual([0, 1, 0, Infinity]);
    b = { state: "closed", failures: 0, until: null };
    expect(b.state).toBe("closed");
  });
});

describe("health rules", () => {
  const config = { heartbeatIntervalMs: 1000, missedHeartbeats: 3, failedAgentTtlMs: 10_000 };
  it("time the next look and the actions at it", () => {
    expect(agentTimer({ state: "running", lastSeenAt: 100, breaker: "closed", breakerUntil: null }, config)).toBe(3100);
    expect(agentTimer({ state: "failed", lastSeenAt: 100, breaker: "closed", breakerUntil: null }, config)).toBe(10_100);
    expect(agentTimer({ state: "running", lastSeenAt: 100, breaker: "open", breakerUntil: 500 }, config)).toBe(500);
    expect(agentTimer({ state: "terminating", lastSeenAt: 100, breaker: "closed", breakerUntil: null }, config)).toBeNull();
    expect(dueActions({ state: "paused", lastSeenAt: 0, breaker: "closed", breakerUntil: null }, 3000, config)).toEqual(["fail"]);
    expect(dueActions({ state: "recovering", lastSeenAt: 0, breaker: "open", breakerUntil: 10 }, 10_000, config)).toEqual(["terminate", "half_open"]);
    expect(["failed", "recovering", "running", "paused"].map((s) => stateAfterHeartbeat(s as never))).toEqual(["recovering", "running", "running", "paused"]);
  });
});

describe("load-balancing strategies", () => {
  const agents: Candidate[] = [
    { agentId: "a", inFlight: 3, maxConcurrency: 4, weight: 1, currentLoad: 0.1, latencyMs: 50 },
    { agentId: "b", inFlight: 1, maxConcurrency: 4, weight: 3, currentLoad: 0.9, latencyMs: 20 },
    { agentId: "c", inFlight: 2, maxConcurrency: 8, weight: 1, currentLoad: 0.2, latencyMs: null },
  ];
  const choose = (strategy: Strategy, list = agents) => pick(strategy, list, new Map())?.agentId;

  it("least_connections picks the fewest in flight", () => {
    expect(choose("least_connections")).toBe("b");
  });

  it("resource_aware picks the lowest utilization (reported load and share of slots)", () => {
    expect(agents.map(utilization)).toEqual([(0.1 + 0.75) / 2, (0.9 + 0.25) / 2, (0.2 + 0.25) / 2]);
    expect(choose("resource_aware")).toBe("c");
  });

  it("latency_based measures every agent first, then picks the fastest", () => {
    expect(choose("latency_based")).toBe("c");
    expect(choose("latency_based", agents.slice(0, 2))).toBe("b");
  });

  it("weighted_round_robin serves in proportion to the weights, smoothly", () => {
    const rr = new Map<string, number>();
    const picks = Array.from({ length: 10 }, () => pick("weighted_round_robin", agents, rr)!.agentId);
    expect(picks.filter((p) => p === "b")).toHaveLength(6);
    expect(picks.filter((p) => p === "a")).toHaveLength(2);
    expect(picks.filter((p) => p === "c")).toHaveLength(2);
    // Smooth: the heavy agent never takes more than two turns in a row here.
    expect(picks.join("")).not.toMatch(/bbb/);
  });

  it("nothing to pick from answers null", () => {
    expect(pick("least_connections", [], new Map())).toBeNull();
  });

  it("choose in one pass exactly what sorting every candidate would choose, in any input order", () => {
    // The reference: sort by the strategy's order and take the first; smooth weighted round robin over the
    // candidates in id order.
    const byId = (a: Candidate, b: Candidate) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0);
    const reference = (strategy: Strategy, list: Candidate[], rr: Map<string, number>): Candidate => {
      const sorted = (order: (a: Candidate, b: Candidate) => number) => [...list].sort(order)[0]!;
      if (strategy === "least_connections") return sorted((a, b) => a.inFlight - b.inFlight || a.inFlight / a.maxConcurrency - b.inFlight / b.maxConcurrency || byId(a, b));
      if (strategy === "resource_aware") return sorted((a, b) => utilization(a) - utilization(b) || byId(a, b));
      if (strategy === "latency_based") return sorted((a, b) => (a.latencyMs ?? -1) - (b.latencyMs ?? -1) || a.inFlight - b.inFlight || byId(a, b));
      let total = 0;
      let best: Candidate | null = null;
      for (const c of [...list].sort(byId)) {
        const score = (rr.get(c.agentId) ?? 0) + c.weight;
        rr.set(c.agentId, score);
        total += c.weight;
        if (best === null || score > rr.get(best.agentId)!) best = c;
      }
      rr.set(best!.agentId, rr.get(best!.agentId)! - total);
      return best!;
    };
    const candidate = fc.record({
      agentId: fc.constantFrom("a", "b", "c", "d", "e", "f", "g"),
      inFlight: fc.integer({ min: 0, max: 4 }),
      maxConcurrency: fc.integer({ min: 4, max: 8 }),
      weight: fc.integer({ min: 1, max: 4 }),
      currentLoad: fc.constantFrom(0, 0.25, 0.5, 1),
      latencyMs: fc.option(fc.integer({ min: 1, max: 5 }), { nil: null }),
    });
    const strategies: Strategy[] = ["least_connections", "resource_aware", "latency_based", "weighted_round_robin"];
    fc.assert(
      fc.property(fc.uniqueArray(candidate, { selector: (c) => c.agentId, minLength: 1, maxLength: 7 }), fc.constantFrom(...strategies), fc.integer({ min: 1, max: 12 }), (list, strategy, rounds) => {
        const ours = new Map<string, number>();
        const theirs = new Map<string, number>();
        for (let i = 0; i < rounds; i++) {
          expect(pick(strategy, list, ours)!.agentId).toBe(reference(strategy, list, theirs).agentId);
          expect([...ours.entries()].sort()).toEqual([...theirs.entries()].sort());
        }
      }),
      { numRuns: 500 },
    );
  });
});
