import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_BACKOFF, retryDelayMs } from "../../durable-objects/pool-coordinator/backoff";
import { DEFAULT_CONFIG, mergeConfig } from "../../durable-objects/pool-coordinator/config";
import { canTransition, TRANSITIONS } from "../../durable-objects/pool-coordinator/agents/lifecycle";
import {
  afterFailedAttempt,
  canCancel,
  fitKey,
  laneAccepts,
  laneKey,
  mergeReady,
  type Lane,
} from "../../durable-objects/pool-coordinator/queue-rules";
import { boundIndex, quantileFromBuckets, DURATION_BOUNDS_MS } from "../../durable-objects/pool-coordinator/stats";
import { needsRearm, nextAlarmAt } from "../../durable-objects/shared/timers";
import { AGENT_STATES, TASK_STATUSES } from "../../contract/records";

describe("retry backoff", () => {
  it("doubles from 1 s and stays within half to all of its step", () => {
    expect(retryDelayMs(1, 0)).toBe(500);
    expect(retryDelayMs(1, 1)).toBe(1000);
    expect(retryDelayMs(2, 1)).toBe(2000);
    expect(retryDelayMs(4, 0.5)).toBe(6000);
  });

  it("never exceeds five minutes, whatever the attempt and the randomness", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, r) => {
        const delay = retryDelayMs(attempt, r);
        const step = Math.min(DEFAULT_BACKOFF.maxMs, DEFAULT_BACKOFF.baseMs * 2 ** Math.min(attempt - 1, 30));
        expect(delay).toBeGreaterThanOrEqual(Math.floor(step / 2));
        expect(delay).toBeLessThanOrEqual(DEFAULT_BACKOFF.maxMs);
      }),
    );
  });
});

describe("after a failed attempt", () => {
  const base = { now: 1_000_000, random01: 0.5 } as const;

  it("waits out a backoff while attempts remain", () => {
    expect(afterFailedAttempt({ ...base, attempts: 1, maxAttempts: 3, retryable: true, cause: "failed" })).toEqual({
      status: "waiting",
      runAfter: base.now + 750,
    });
    expect(afterFailedAttempt({ ...base, attempts: 2, maxAttempts: 3, retryable: true, cause: "expired" })).toEqual({
      status: "waiting",
      runAfter: base.now + 1500,
    });
  });

  it("is dead when attempts are used up or the failure is not retryable", () => {
    expect(afterFailedAttempt({ ...base, attempts: 3, maxAttempts: 3, retryable: true, cause: "failed" })).toEqual({ status: "dead" });
    expect(afterFailedAttempt({ ...base, attempts: 1, maxAttempts: 3, retryable: false, cause: "failed" })).toEqual({ status: "dead" });
    expect(afterFailedAttempt({ ...base, attempts: 1, maxAttempts: 1, retryable: true, cause: "agent_lost" })).toEqual({ status: "dead" });
  });

  it("goes back to the queue at once when the agent was lost", () => {
    expect(afterFailedAttempt({ ...base, attempts: 1, maxAttempts: 3, retryable: true, cause: "agent_lost" })).toEqual({ status: "queued" });
  });
});

describe("cancel", () => {
  it("applies to every status that is not final", () => {
    expect(TASK_STATUSES.filter(canCancel)).toEqual(["waiting", "queued", "leased"]);
  });
});

describe("lanes", () => {
  const lane = (tenant: string, capabilities: string[], cpu = 0, memoryMb = 0, gpu = 0): Lane => ({
    id: 1,
    tenant,
    requires: { capabilities, cpu, memoryMb, gpu },
  });
  const agent = { tenant: null, capabilities: ["onnx", "gpu"], resources: { cpu: 8, memoryMb: 32768, gpu: 1 } };

  it("accept agents with every capability and enough resources", () => {
    expect(laneAccepts(lane("t", []), agent)).toBe(true);
    expect(laneAccepts(lane("t", ["onnx"], 8, 32768, 1), agent)).toBe(true);
    expect(laneAccepts(lane("t", ["onnx", "cuda"]), agent)).toBe(false);
    expect(laneAccepts(lane("t", [], 9), agent)).toBe(false);
    expect(laneAccepts(lane("t", [], 0, 40000), agent)).toBe(false);
    expect(laneAccepts(lane("t", [], 0, 0, 2), agent)).toBe(false);
  });

  it("of another tenant are closed to a tenant-bound agent, open to a shared one", () => {
    expect(laneAccepts(lane("a", []), { ...agent, tenant: "a" })).toBe(true);
    expect(laneAccepts(lane("b", []), { ...agent, tenant: "a" })).toBe(false);
    expect(laneAccepts(lane("b", []), agent)).toBe(true);
  });

  it("accept the same agents when the agents' fit keys are equal (dispatch drops a drained kind at once)", () => {
    const caps = fc.uniqueArray(fc.constantFrom("a", "b", "c", "gpu"), { maxLength: 3 });
    const small = fc.integer({ min: 0, max: 3 });
    const fitArb = fc.record({ tenant: fc.constantFrom(null, "t", "u"), capabilities: caps, resources: fc.record({ cpu: small, memoryMb: small, gpu: small }) });
    const laneArb = fc.record({ tenant: fc.constantFrom("t", "u"), caps, cpu: small, memoryMb: small, gpu: small });
    fc.assert(
      fc.property(fitArb, fitArb, fc.array(laneArb, { minLength: 1, maxLength: 8 }), (x, y, lanes) => {
        // The same agent with its capabilities shuffled and repeated has the same key.
        const shuffled = { ...x, capabilities: [...x.capabilities, ...x.capabilities].reverse() };
        expect(fitKey(shuffled)).toBe(fitKey(x));
        if (fitKey(x) !== fitKey(y)) return;
        for (const l of lanes) expect(laneAccepts(lane(l.tenant, l.caps, l.cpu, l.memoryMb, l.gpu), x)).toBe(laneAccepts(lane(l.tenant, l.caps, l.cpu, l.memoryMb, l.gpu), y));
      }),
      { numRuns: 500 },
    );
    expect(fitKey(agent)).not.toBe(fitKey({ ...agent, tenant: "t" }));
    expect(fitKey(agent)).not.toBe(fitKey({ ...agent, resources: { ...agent.resources, gpu: 2 } }));
    expect(fitKey(agent)).not.toBe(fitKey({ ...agent, capabilities: ["onnx"] }));
  });

  it("are keyed by normalised requirements", () => {
    expect(laneKey("t", { capabilities: ["b", "a", "a"], cpu: 1, memoryMb: 2, gpu: 0 })).toBe(
      laneKey("t", { capabilities: ["a", "b"], cpu: 1, memoryMb: 2, gpu: 0 }),
    );
    expect(laneKey("t", { capabilities: [], cpu: 0, memoryMb: 0, gpu: 0 })).not.toBe(laneKey("u", { capabilities: [], cpu: 0, memoryMb: 0, gpu: 0 }));
  });

  it("merge in serving order: priority first, then first in first out", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.record({ seq: fc.nat(10_000), priority: fc.integer({ min: 0, max: 9 }) }), { maxLength: 20 }), { maxLength: 5 }),
        fc.integer({ min: 0, max: 50 }),
        (lists, n) => {
          const unique = lists.map((l, i) => l.map((r, j) => ({ ...r, seq: r.seq * 1000 + i * 50 + j })));
          const heads = unique.map((l) => [...l].sort((a, b) => b.priority - a.priority || a.seq - b.seq));
          const merged = mergeReady(heads, n);
          const expected = unique.flat().sort((a, b) => b.priority - a.priority || a.seq - b.seq).slice(0, n);
          expect(merged).toEqual(expected);
        },
      ),
    );
  });
});

describe("agent lifecycle", () => {
  it("allows exactly the pairs of API.md", () => {
    const allowed = AGENT_STATES.flatMap((from) => AGENT_STATES.filter((to) => canTransition(from, to)).map((to) => `${from}->${to}`));
    expect(allowed.sort()).toEqual(
      [
        "pending->initializing",
        "initializing->running",
        "running->paused",
        "paused->running",
        "running->scaling",
        "scaling->running",
        "running->terminating",
        "paused->terminating",
        "scaling->terminating",
        "running->failed",
        "paused->failed",
        "scaling->failed",
        "failed->recovering",
        "recovering->running",
        "failed->terminating",
        "recovering->terminating",
      ].sort(),
    );
    expect(TRANSITIONS.terminating).toEqual([]);
  });
});

describe("timers", () => {
  it("pick the earliest deadline", () => {
    expect(nextAlarmAt([null, 5, undefined, 3, 9])).toBe(3);
    expect(nextAlarmAt([null, undefined])).toBeNull();
  });

  it("move the alarm only to an earlier deadline", () => {
    expect(needsRearm(null, 10)).toBe(true);
    expect(needsRearm(10, 5)).toBe(true);
    expect(needsRearm(10, 20)).toBe(false);
    expect(needsRearm(10, null)).toBe(false);
  });
});

describe("pool config", () => {
  it("merges a patch, nested breaker included", () => {
    const merged = mergeConfig(DEFAULT_CONFIG, { strategy: "latency_based", breaker: { cooldownMs: 5000 } });
    expect(merged).toEqual({ ...DEFAULT_CONFIG, strategy: "latency_based", breaker: { failureThreshold: 5, cooldownMs: 5000 } });
    expect(mergeConfig(merged, {})).toEqual(merged);
  });
});

describe("latency quantiles", () => {
  it("interpolate inside the bucket, like histogram_quantile", () => {
    const counts = new Array(DURATION_BOUNDS_MS.length + 1).fill(0);
    counts[boundIndex(7)] = 100; // all in (5, 10]
    expect(quantileFromBuckets(counts, 0.5)).toBe(8);
    expect(quantileFromBuckets(counts, 0.99)).toBe(10);
    expect(quantileFromBuckets(new Array(counts.length).fill(0), 0.5)).toBeNull();
  });

  it("stay within the bounds of the bucket that holds the rank", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2_000_000 }), { minLength: 1, maxLength: 200 }), (samples) => {
        const counts = new Array(DURATION_BOUNDS_MS.length + 1).fill(0);
        for (const s of samples) counts[boundIndex(s)] += 1;
        const sorted = [...samples].sort((a, b) => a - b);
        const median = sorted[Math.ceil(0.5 * sorted.length) - 1]!;
        const i = boundIndex(median);
        const q = quantileFromBuckets(counts, 0.5)!;
        const lower = i === 0 ? 0 : DURATION_BOUNDS_MS[i - 1]!;
        const upper = i < DURATION_BOUNDS_MS.length ? DURATION_BOUNDS_MS[i]! : lower;
        expect(q).toBeGreaterThanOrEqual(lower);
        expect(q).toBeLessThanOrEqual(upper);
      }),
    );
  });
});
