/**
 * Adding a pool's shards up: what each shard answers for itself becomes one answer for the pool (API.md: pool
 * stats, lists and `/metrics` add up every shard). Counts add; rates add; latency quantiles come from the sum of
 * the shards' histograms (same buckets everywhere, lib/histogram.ts); an agent is a member of every shard, counted
 * once, where it is at home.
 */
import type { TenantUsageTotal } from "../../contract/usage.ts";
import { AGENT_STATES, BREAKER_STATES, TASK_STATUSES, type AgentCounts, type AgentRecord, type BreakerState, type PoolMetrics, type PoolStats, type ShardStats, type StatusCounts, type TaskRecord } from "../../contract/records.ts";
import { quantileFromBuckets } from "../../lib/histogram.ts";

export function sumStatusCounts(parts: readonly StatusCounts[]): StatusCounts {
  const out = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as StatusCounts;
  for (const p of parts) for (const s of TASK_STATUSES) out[s] += p[s] ?? 0;
  return out;
}

export function sumAgentCounts(parts: readonly AgentCounts[]): AgentCounts {
  const out = Object.fromEntries(AGENT_STATES.map((s) => [s, 0])) as AgentCounts;
  for (const p of parts) for (const s of AGENT_STATES) out[s] += p[s] ?? 0;
  return out;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/** One pool's stats from its shards' (at least one). */
export function mergeStats(parts: readonly ShardStats[]): PoolStats {
  const first = parts[0]!;
  const counts = first.latencyCounts.map((_, i) => parts.reduce((sum, p) => sum + (p.latencyCounts[i] ?? 0), 0));
  const rate = (pick: (p: PoolStats) => number) => round2(parts.reduce((sum, p) => sum + pick(p), 0));
  return {
    pool: first.pool,
    queue: sumStatusCounts(parts.map((p) => p.queue)),
    agents: sumAgentCounts(parts.map((p) => p.agents)),
    throughput: {
      windowSeconds: first.throughput.windowSeconds,
      submittedPerSec: rate((p) => p.throughput.submittedPerSec),
      leasedPerSec: rate((p) => p.throughput.leasedPerSec),
      succeededPerSec: rate((p) => p.throughput.succeededPerSec),
      failedPerSec: rate((p) => p.throughput.failedPerSec),
    },
    latencyMs: {
      p50: quantileFromBuckets(counts, 0.5),
      p99: quantileFromBuckets(counts, 0.99),
      windowSeconds: first.latencyMs.windowSeconds,
      samples: counts.reduce((a, b) => a + b, 0),
    },
  };
}

const BREAKER_RANK: Record<BreakerState, number> = Object.fromEntries(BREAKER_STATES.map((s, i) => [s, i])) as Record<BreakerState, number>;

/** One pool's metrics from its shards': counts and counters add, an agent's breaker is its worst over the shards. */
export function mergeMetrics(parts: readonly PoolMetrics[]): PoolMetrics {
  const first = parts[0]!;
  const tasks = new Map<string, PoolMetrics["tasks"][number]>();
  for (const p of parts) {
    for (const t of p.tasks) {
      const key = `${t.tenant}\n${t.status}`;
      const held = tasks.get(key);
      if (held) held.count += t.count;
      else tasks.set(key, { ...t });
    }
  }
  const breakers = new Map<string, BreakerState>();
  for (const p of parts) {
    for (const b of p.breakers) {
      const held = breakers.get(b.agentId);
      if (held === undefined || BREAKER_RANK[b.breaker] > BREAKER_RANK[held]) breakers.set(b.agentId, b.breaker);
    }
  }
  const counters: Record<string, number> = {};
  for (const p of parts) for (const [name, n] of Object.entries(p.counters)) counters[name] = (counters[name] ?? 0) + n;
  const routing: PoolMetrics["routing"] = {};
  for (const p of parts) for (const [reason, n] of Object.entries(p.routing) as [keyof PoolMetrics["routing"], number][]) routing[reason] = (routing[reason] ?? 0) + n;
  const cache = new Map<string, PoolMetrics["cache"][number]>();
  for (const p of parts) {
    for (const c of p.cache ?? []) {
      const key = `${c.outcome}\n${c.type}`;
      const held = cache.get(key);
      if (held) held.n += c.n;
      else cache.set(key, { ...c });
    }
  }
  const usage = new Map<string, TenantUsageTotal>();
  for (const p of parts) {
    for (const u of p.usage ?? []) {
      const held = usage.get(u.tenant);
      // In milliseconds, so that the sums stay exact.
      if (held) {
        held.tasks += u.tasks;
        held.taskSeconds = Math.round(held.taskSeconds * 1000 + u.taskSeconds * 1000) / 1000;
        held.gpuSeconds = Math.round(held.gpuSeconds * 1000 + u.gpuSeconds * 1000) / 1000;
      } else usage.set(u.tenant, { ...u });
    }
  }
  return {
    pool: first.pool,
    shard: first.shard,
    usage: [...usage.values()].sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0)),
    routing,
    cache: [...cache.values()],
    tasks: [...tasks.values()],
    agents: sumAgentCounts(parts.map((p) => p.agents)),
    breakers: [...breakers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([agentId, breaker]) => ({ agentId, breaker })),
    counters,
    duration: {
      bounds: first.duration.bounds,
      counts: first.duration.counts.map((_, i) => parts.reduce((sum, p) => sum + (p.duration.counts[i] ?? 0), 0)),
      sumMs: parts.reduce((sum, p) => sum + p.duration.sumMs, 0),
      count: parts.reduce((sum, p) => sum + p.duration.count, 0),
    },
  };
}

/**
 * One agent from its records on several shards: identity and load from its home shard (the first record when no
 * shard says it is home), tasks in flight and credits added up, the worst breaker, the latest heartbeat.
 */
export function mergeAgent(records: readonly AgentRecord[]): AgentRecord {
  const home = records.find((r) => r.home) ?? records[0]!;
  let breaker = home.breaker;
  for (const r of records) if (BREAKER_RANK[r.breaker] > BREAKER_RANK[breaker]) breaker = r.breaker;
  return {
    ...home,
    inFlight: records.reduce((sum, r) => sum + r.inFlight, 0),
    credits: records.reduce((sum, r) => sum + r.credits, 0),
    lastHeartbeatAt: Math.max(...records.map((r) => r.lastHeartbeatAt)),
    breaker,
    shard: home.shard,
    home: true,
  };
}

/** A pool's agents from every shard's list: each agent once, merged, in agent id order. */
export function mergeAgentLists(lists: readonly AgentRecord[][]): AgentRecord[] {
  const byId = new Map<string, AgentRecord[]>();
  for (const list of lists) for (const a of list) byId.set(a.agentId, [...(byId.get(a.agentId) ?? []), a]);
  return [...byId.keys()].sort().map((id) => mergeAgent(byId.get(id)!));
}

// ---- a merged cursor over the shards' task lists ----------------------------------------------------------------

/**
 * Where a merged list stands on each shard: that shard's own cursor, "" for its beginning, null once it has nothing
 * more (a shard the cursor does not name starts from its beginning: one added since).
 */
export type MergedCursor = Record<string, string | null>;

/** `m.<shard>:<its cursor>...` with `-` for a shard that has nothing more and nothing for its beginning. */
export function encodeCursor(cursor: MergedCursor): string {
  const parts = Object.entries(cursor).map(([shard, at]) => `${shard}:${at === null ? "-" : at}`);
  return `m.${parts.join(".")}`;
}

/** A merged cursor, or null when the text is not one (a shard's own cursor from before the pool had shards). */
export function decodeCursor(text: string): MergedCursor | null {
  if (!text.startsWith("m.")) return null;
  const out: MergedCursor = {};
  for (const part of text.slice(2).split(".")) {
    const m = /^(0|[1-9][0-9]{0,3}):(-|c[0-9a-z]{1,12}|)$/.exec(part);
    if (!m) return null;
    out[m[1]!] = m[2] === "-" ? null : m[2]!;
  }
  return out;
}

/**
 * The next page of a merged list from each shard's page (up to `limit` tasks after its cursor, in the shard's
 * order, with the cursor after each task): a k-way merge that takes, `limit` times, the head of the page whose
 * head is oldest (creation time, then id). What is taken from a shard is always a prefix of its page, so its
 * cursor moves past exactly what was shown: no task is skipped or shown twice.
 */
export function mergePages(
  pages: readonly { shard: number; tasks: TaskRecord[]; after: string[]; cursor: string | null; before: string | null }[],
  limit: number,
): { tasks: TaskRecord[]; cursor: string | null } {
  const heads = pages.map(() => 0);
  const tasks: TaskRecord[] = [];
  while (tasks.length < limit) {
    let best = -1;
    pages.forEach((p, k) => {
      const t = p.tasks[heads[k]!];
      if (!t) return;
      const b = best === -1 ? undefined : pages[best]!.tasks[heads[best]!]!;
      if (!b || t.createdAt < b.createdAt || (t.createdAt === b.createdAt && t.id < b.id)) best = k;
    });
    if (best === -1) break;
    tasks.push(pages[best]!.tasks[heads[best]!]!);
    heads[best]!++;
  }
  const next: MergedCursor = {};
  let more = false;
  pages.forEach((p, k) => {
    const taken = heads[k]!;
    if (taken === p.tasks.length) {
      next[p.shard] = p.cursor;
      if (p.cursor !== null) more = true;
    } else {
      next[p.shard] = taken === 0 ? (p.before ?? "") : p.after[taken - 1]!;
      more = true;
    }
  });
  return { tasks, cursor: more ? encodeCursor(next) : null };
}
