import type { Strategy } from "../../../contract/records.ts";

export type { Strategy } from "../../../contract/records.ts";

/**
 * Which connected agent gets the next pushed tasks, by the pool's strategy. Pure: the coordinator passes the
 * candidates (agents with credits and free concurrency) and the round-robin state it keeps in memory.
 */
export interface Candidate {
  agentId: string;
  inFlight: number;
  maxConcurrency: number;
  /** Weighted round robin: from the agent's resources (its CPUs, at least 1). */
  weight: number;
  /** Resource-aware: the load the agent last reported (0..1 and up). */
  currentLoad: number;
  /** Latency-based: the coordinator's EWMA of this agent's lease-to-completion time; null before its first. */
  latencyMs: number | null;
}


/** Smooth weighted round robin (as nginx does it): the running score of each agent, kept between picks. */
export type RoundRobinState = Map<string, number>;

export function weightOf(resources: { cpu: number }): number {
  return Math.max(1, resources.cpu);
}

/** How busy an agent is for the resource-aware strategy: its reported load and its share of slots in use. */
export function utilization(c: Candidate): number {
  return (c.currentLoad + c.inFlight / c.maxConcurrency) / 2;
}

const byId = (a: Candidate, b: Candidate) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0);

/** The first of `candidates` by `order` (a total order): one pass, no sort. */
function first<C>(candidates: readonly C[], order: (a: C, b: C) => number): C {
  let best = candidates[0]!;
  for (let i = 1; i < candidates.length; i++) if (order(candidates[i]!, best) < 0) best = candidates[i]!;
  return best;
}

/** The agent to serve next, or null when there is none. One pass over the candidates for every strategy. */
export function pick<C extends Candidate>(strategy: Strategy, candidates: readonly C[], rr: RoundRobinState): C | null {
  if (candidates.length === 0) return null;
  switch (strategy) {
    case "least_connections":
      return first(candidates, (a, b) => a.inFlight - b.inFlight || a.inFlight / a.maxConcurrency - b.inFlight / b.maxConcurrency || byId(a, b));
    case "resource_aware":
      return first(candidates, (a, b) => utilization(a) - utilization(b) || byId(a, b));
    case "latency_based":
      // Agents without a measurement yet go first, so every agent gets measured.
      return first(candidates, (a, b) => (a.latencyMs ?? -1) - (b.latencyMs ?? -1) || a.inFlight - b.inFlight || byId(a, b));
    case "weighted_round_robin": {
      // Every candidate's score grows by its weight; the highest score (the lowest id among equals) is served
      // and gives back the total.
      let total = 0;
      let best: C | null = null;
      let bestScore = 0;
      for (const c of candidates) {
        const score = (rr.get(c.agentId) ?? 0) + c.weight;
        rr.set(c.agentId, score);
        total += c.weight;
        if (best === null || score > bestScore || (score === bestScore && byId(c, best) < 0)) {
          best = c;
          bestScore = score;
        }
      }
      rr.set(best!.agentId, bestScore - total);
      return best;
    }
  }
}

/** Exponentially weighted moving average, alpha 0.2: recent completions count most, one outlier little. */
export function ewma(previous: number | null, sample: number, alpha = 0.2): number {
  return previous === null ? sample : previous + alpha * (sample - previous);
}
