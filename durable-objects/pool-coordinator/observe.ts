/** What a pool shard shows of itself: counts by status, throughput and latency, and the figures of /metrics. */
import type { AgentCounts, PoolMetrics, Principal, ShardStats, StatusCounts } from "../../contract/records.ts";
import type { AgentStore } from "./agents/index.ts";
import { LATENCY_WINDOW_MS, RATE_WINDOW_MS, type StatsStore } from "./stats.ts";
import type { StatusCountDeltas } from "./tasks/counts.ts";
import type { UsageLedger } from "./usage/ledger.ts";

export interface Observed {
  pool: string;
  shard: number;
  counts: StatusCountDeltas;
  agents: AgentStore;
  stats: StatsStore;
  usage: UsageLedger;
}

/** Task counts by status: a tenant's credential sees its own, the bootstrap key everyone's. */
export function statusCounts(o: Observed, principal: Principal): StatusCounts {
  return o.counts.of(principal.allTenants ? null : principal.tenant);
}

export function agentCounts(o: Observed): AgentCounts {
  return o.agents.countsByState();
}

export function poolStats(o: Observed, principal: Principal, now: number): ShardStats {
  const rates = o.stats.rates(now);
  const latency = o.stats.latency(now);
  return {
    pool: o.pool,
    shard: o.shard,
    latencyCounts: latency.counts,
    queue: statusCounts(o, principal),
    agents: agentCounts(o),
    throughput: {
      windowSeconds: RATE_WINDOW_MS / 1000,
      submittedPerSec: rates.submitted,
      leasedPerSec: rates.leased,
      succeededPerSec: rates.succeeded,
      failedPerSec: rates.failed,
    },
    latencyMs: { p50: latency.p50, p99: latency.p99, windowSeconds: LATENCY_WINDOW_MS / 1000, samples: latency.samples },
  };
}

/** A tenant's credential sees its own task counts; counters and latency are per pool. */
export function poolMetrics(o: Observed, principal: Principal): PoolMetrics {
  const tasks = o.counts.rows();
  return {
    pool: o.pool,
    shard: o.shard,
    routing: o.stats.routing(),
    cache: o.stats.cache(),
    tasks: principal.allTenants ? tasks : tasks.filter((t) => t.tenant === principal.tenant),
    agents: agentCounts(o),
    breakers: o.agents.breakers(),
    counters: o.stats.counters(),
    duration: o.stats.durationTotals(),
    usage: principal.allTenants ? o.usage.totals() : o.usage.totals().filter((u) => u.tenant === principal.tenant),
  };
}
