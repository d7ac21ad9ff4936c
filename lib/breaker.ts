import type { BreakerState, PoolConfig } from "../contract/records.ts";

export type { BreakerState } from "../contract/records.ts";

/**
 * The circuit breaker of one agent: consecutive failures open it (no tasks) for a cooldown; then half-open lets
 * one task through; a success closes it, a failure opens it again.
 */

export interface Breaker {
  state: BreakerState;
  failures: number;
  until: number | null;
}

export function afterOutcome(breaker: Breaker, ok: boolean, now: number, config: PoolConfig["breaker"]): Breaker {
  if (ok) return { state: "closed", failures: 0, until: null };
  const failures = breaker.failures + 1;
  if (breaker.state === "half_open" || (breaker.state === "closed" && failures >= config.failureThreshold)) {
    return { state: "open", failures, until: now + config.cooldownMs };
  }
  return { ...breaker, failures };
}

/** How many more tasks the breaker lets an agent hold, given what it holds now. */
export function breakerAllowance(state: BreakerState, inFlight: number): number {
  if (state === "open") return 0;
  if (state === "half_open") return inFlight === 0 ? 1 : 0;
  return Number.POSITIVE_INFINITY;
}
