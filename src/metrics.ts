import { AGENT_STATES, BREAKER_STATES, ROUTE_REASONS, TASK_STATUSES, type PoolMetrics } from "../contract/records.ts";

/** Counters exported per pool, with the help text Prometheus shows. */
const COUNTERS: readonly [string, string][] = [
  ["submitted", "Tasks accepted (idempotent repeats not counted)."],
  ["leased", "Leases granted (one per attempt)."],
  ["succeeded", "Tasks completed successfully."],
  ["failed", "Failed attempts of any cause: reported failures, expired leases, lost agents."],
  ["expired", "Leases that ran out before the agent completed, failed or extended them."],
  ["dead", "Tasks moved to the dead letter queue."],
  ["cancelled", "Tasks cancelled."],
  ["redriven", "Dead tasks queued again by a redrive."],
  ["purged", "Finished tasks removed after their retention."],
];

const label = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

function seconds(ms: number): string {
  return ms === Infinity ? "+Inf" : String(ms / 1000);
}

/** The Prometheus text exposition (format 0.0.4) of every pool's metrics. */
export function renderMetrics(pools: readonly (PoolMetrics & { byShard?: readonly PoolMetrics[] })[]): string {
  const lines: string[] = [];
  const family = (name: string, type: string, help: string): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };

  family("daa_pools", "gauge", "Pools known to the directory.");
  lines.push(`daa_pools ${pools.length}`);

  family("daa_tasks", "gauge", "Tasks in a pool by status.");
  for (const p of pools) {
    for (const status of TASK_STATUSES) {
      const n = p.tasks.filter((t) => t.status === status).reduce((sum, t) => sum + t.count, 0);
      lines.push(`daa_tasks{pool="${label(p.pool)}",status="${status}"} ${n}`);
    }
  }

  family("daa_agents", "gauge", "Agents in a pool by lifecycle state.");
  for (const p of pools) {
    for (const state of AGENT_STATES) lines.push(`daa_agents{pool="${label(p.pool)}",state="${state}"} ${p.agents[state]}`);
  }

  family("daa_agent_breaker", "gauge", "Circuit breaker of each agent: 1 for its current state (closed, open, half_open).");
  for (const p of pools) {
    for (const { agentId, breaker } of p.breakers) {
      for (const state of BREAKER_STATES) {
        lines.push(`daa_agent_breaker{pool="${label(p.pool)}",agent="${label(agentId)}",state="${state}"} ${breaker === state ? 1 : 0}`);
      }
    }
  }

  for (const [name, help] of COUNTERS) {
    const metric = `daa_tasks_${name}_total`;
    family(metric, "counter", help);
    for (const p of pools) lines.push(`${metric}{pool="${label(p.pool)}"} ${p.counters[name] ?? 0}`);
  }

  family("daa_task_seconds_total", "counter", "Seconds tasks were held by agents (lease to settle), by pool and tenant.");
  for (const p of pools) for (const u of p.usage ?? []) lines.push(`daa_task_seconds_total{pool="${label(p.pool)}",tenant="${label(u.tenant)}"} ${u.taskSeconds}`);
  family("daa_gpu_seconds_total", "counter", "GPU-seconds of held tasks (held seconds times requires.gpu), by pool and tenant.");
  for (const p of pools) for (const u of p.usage ?? []) lines.push(`daa_gpu_seconds_total{pool="${label(p.pool)}",tenant="${label(u.tenant)}"} ${u.gpuSeconds}`);

  family("daa_routing_decisions_total", "counter", "Tasks the Worker sent to a shard, by why it chose that shard (only, latency, region, rotation, avoiding, retry, dependency).");
  for (const p of pools) {
    for (const shard of p.byShard ?? [p]) {
      for (const reason of ROUTE_REASONS) {
        const n = shard.routing[reason] ?? 0;
        if (n > 0) lines.push(`daa_routing_decisions_total{pool="${label(p.pool)}",shard="${shard.shard}",reason="${reason}"} ${n}`);
      }
    }
  }

  family("daa_cache_lookups_total", "counter", "Cacheable submits by outcome (hit-l1, hit-l2, hit-l3, hit-semantic, miss) and task type.");
  for (const p of pools) {
    for (const c of p.cache ?? []) {
      if (c.outcome.startsWith("hit-") || c.outcome === "miss") lines.push(`daa_cache_lookups_total{pool="${label(p.pool)}",type="${label(c.type)}",outcome="${c.outcome}"} ${c.n}`);
    }
  }
  family("daa_cache_fills_total", "counter", "Cache entries written by successes of cacheable tasks (result=ok), or given up after retries (result=failed).");
  for (const p of pools) {
    for (const c of p.cache ?? []) {
      if (c.outcome === "fill" || c.outcome === "fill_failed") lines.push(`daa_cache_fills_total{pool="${label(p.pool)}",type="${label(c.type)}",result="${c.outcome === "fill" ? "ok" : "failed"}"} ${c.n}`);
    }
  }

  const hist = "daa_task_duration_seconds";
  family(hist, "histogram", "Time from submission to success.");
  for (const p of pools) {
    const pool = label(p.pool);
    let cumulative = 0;
    p.duration.bounds.forEach((bound, i) => {
      cumulative += p.duration.counts[i] ?? 0;
      lines.push(`${hist}_bucket{pool="${pool}",le="${seconds(bound)}"} ${cumulative}`);
    });
    lines.push(`${hist}_sum{pool="${pool}"} ${p.duration.sumMs / 1000}`, `${hist}_count{pool="${pool}"} ${p.duration.count}`);
  }
  return `${lines.join("\n")}\n`;
}
