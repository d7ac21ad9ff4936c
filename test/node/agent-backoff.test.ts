import { describe, expect, it } from "vitest";
import { Backoff, backoffDelay, backoffStep } from "../../agent/sdk/backoff.ts";

describe("backoff with equal jitter", () => {
  it("doubles the step from the base up to the cap", () => {
    const steps = Array.from({ length: 10 }, (_, n) => backoffStep(n, { baseMs: 100, maxMs: 5_000 }));
    expect(steps).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
    // However long the outage, the step stays finite and capped.
    expect(backoffStep(10_000, { baseMs: 100, maxMs: 5_000 })).toBe(5_000);
  });

  it("draws each delay between half the step and the whole step", () => {
    for (let n = 0; n < 12; n++) {
      const step = backoffStep(n, { baseMs: 250, maxMs: 15_000 });
      expect(backoffDelay(n, { baseMs: 250, maxMs: 15_000, random: () => 0 })).toBe(step / 2);
      expect(backoffDelay(n, { baseMs: 250, maxMs: 15_000, random: () => 0.999999 })).toBeCloseTo(step, -1);
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(n, { baseMs: 250, maxMs: 15_000 });
        expect(d).toBeGreaterThanOrEqual(step / 2);
        expect(d).toBeLessThanOrEqual(step);
      }
    }
  });

  it("spreads delays (jitter), so a fleet does not reconnect in lockstep", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, { baseMs: 250 })));
    expect(delays.size).toBeGreaterThan(10);
  });

  it("counts failures and starts over after reset()", () => {
    const b = new Backoff({ baseMs: 100, maxMs: 1_000, random: () => 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([50, 100, 200, 400, 500]);
    expect(b.failures).toBe(5);
    b.reset();
    expect(b.failures).toBe(0);
    expect(b.next()).toBe(50);
  });
});
