/**
 * Counters, rates and latency of one pool, kept in the pool's SQLite storage and written in the same
 * transaction as the change they count, so a restart loses nothing and a rolled-back change counts nothing.
 */
import { CACHE_COUNTED, ROUTE_REASONS, type CacheCount, type RouteReason } from "../../contract/records.ts";
import { boundIndex, boundValue, DURATION_BOUNDS_MS, quantileFromBuckets } from "../../lib/histogram.ts";

export { boundIndex, boundValue, DURATION_BOUNDS_MS, quantileFromBuckets } from "../../lib/histogram.ts";

/** Width of one rate / latency bucket, and how much history stats look at. */
export const BUCKET_MS = 10_000;
export const RATE_WINDOW_MS = 60_000;
export const LATENCY_WINDOW_MS = 300_000;
/** How far back the drain rate of the load summary looks. */
export const DRAIN_WINDOW_MS = 20_000;
const KEEP_MS = 3_600_000;
/** Duration bucket 0 holds the all-time totals; time buckets are numbered from the epoch and are all > 0. */
const ALL_TIME = 0;

export type CounterName = "submitted" | "leased" | "succeeded" | "failed" | "expired" | "dead" | "cancelled" | "redriven" | "purged";

export const COUNTER_NAMES: readonly CounterName[] = ["submitted", "leased", "succeeded", "failed", "expired", "dead", "cancelled", "redriven", "purged"];

/** Routing decisions of the Worker that sent tasks here, by reason (counters named `routed.<reason>`). */
type RoutedName = `routed.${RouteReason}`;
/** Output cache lookups and fills by type (counters named `cache.<outcome> <type>`). */
type CacheName = `cache.${CacheCount["outcome"]} ${string}`;

export function bucketOf(ms: number): number {
  return Math.floor(ms / BUCKET_MS);
}

export class StatsStore {
  private lastPrunedBucket = 0;
  /** Counts and durations of the open transaction, written once by `flush` at its end. */
  private readonly pendingCounts = new Map<CounterName | RoutedName | CacheName, number>();
  private pendingDurations: number[] = [];

  constructor(private readonly sql: SqlStorage) {}

  /** Adds to a counter (and to the current rate bucket, at `flush`). */
  count(name: CounterName | RoutedName | CacheName, n: number): void {
    if (n > 0) this.pendingCounts.set(name, (this.pendingCounts.get(name) ?? 0) + n);
  }

  /** Records how long tasks took from submission to success. */
  recordDurations(durationsMs: readonly number[]): void {
    for (const ms of durationsMs) this.pendingDurations.push(ms);
  }

  /** Drops what a rolled-back transaction counted. */
  discard(): void {
    this.pendingCounts.clear();
    this.pendingDurations = [];
  }

  /**
   * Writes what this transaction counted: a batch of a thousand completions costs a handful of upserts,
   * not thousands. Call at the end of the transaction, inside it.
   */
  flush(now: number): void {
    const bucket = bucketOf(now);
    for (const [name, n] of this.pendingCounts) {
      this.sql.exec(
        "INSERT INTO counters (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = value + ?2",
        name,
        n,
      );
      this.sql.exec(
        "INSERT INTO rate_buckets (bucket, name, n) VALUES (?1, ?2, ?3) ON CONFLICT (bucket, name) DO UPDATE SET n = n + ?3",
        bucket,
        name,
        n,
      );
    }
    const byBound = new Map<number, { n: number; sum: number }>();
    for (const ms of this.pendingDurations) {
      const le = boundValue(boundIndex(ms));
      const entry = byBound.get(le) ?? { n: 0, sum: 0 };
      entry.n += 1;
      entry.sum += Math.max(0, Math.round(ms));
      byBound.set(le, entry);
    }
    for (const [le, { n, sum }] of byBound) {
      for (const b of [ALL_TIME, bucket]) {
        this.sql.exec(
          `INSERT INTO duration_buckets (bucket, le, n, sum_ms) VALUES (?1, ?2, ?3, ?4)
           ON CONFLICT (bucket, le) DO UPDATE SET n = n + ?3, sum_ms = sum_ms + ?4`,
          b,
          le,
          n,
          sum,
        );
      }
    }
    if (this.pendingCounts.size > 0 || byBound.size > 0) this.prune(bucket);
    this.discard();
  }

  counters(): Record<CounterName, number> {
    const out = Object.fromEntries(COUNTER_NAMES.map((name) => [name, 0])) as Record<CounterName, number>;
    for (const row of this.sql.exec<{ name: string; value: number }>("SELECT name, value FROM counters")) {
      if ((COUNTER_NAMES as readonly string[]).includes(row.name)) out[row.name as CounterName] = row.value;
    }
    return out;
  }

  /** Routing decisions counted here, by reason. */
  routing(): Partial<Record<RouteReason, number>> {
    const out: Partial<Record<RouteReason, number>> = {};
    for (const row of this.sql.exec<{ name: string; value: number }>("SELECT name, value FROM counters WHERE name LIKE 'routed.%'")) {
      const reason = row.name.slice("routed.".length) as RouteReason;
      if ((ROUTE_REASONS as readonly string[]).includes(reason)) out[reason] = row.value;
    }
    return out;
  }

  /** Output cache lookups and fills counted here (the Worker reports its hits; misses and fills are counted here). */
  cache(): CacheCount[] {
    const out: CacheCount[] = [];
    for (const row of this.sql.exec<{ name: string; value: number }>("SELECT name, value FROM counters WHERE name LIKE 'cache.%'")) {
      const space = row.name.indexOf(" ");
      const outcome = row.name.slice("cache.".length, space) as CacheCount["outcome"];
      if (space > 0 && (CACHE_COUNTED as readonly string[]).includes(outcome)) out.push({ outcome, type: row.name.slice(space + 1), n: row.value });
    }
    return out;
  }

  /**
   * Leases per second lately, for the router's expected queue wait: over the last `windowMs`, or since the first
   * lease in it when that is later (a shard that just started leasing is not averaged over a minute it was idle
   * for), at least over one second. Counts in the open transaction are not included.
   */
  drainRate(now: number, windowMs = DRAIN_WINDOW_MS): number {
    const from = bucketOf(now - windowMs);
    const row = this.sql.exec<{ n: number | null; first: number | null }>("SELECT sum(n) AS n, min(bucket) AS first FROM rate_buckets WHERE name = 'leased' AND bucket >= ?", from).one();
    if (!row.n || row.first === null) return 0;
    const since = Math.max(row.first * BUCKET_MS, now - windowMs);
    return Math.round((row.n / Math.max(1_000, now - since)) * 1000 * 100) / 100;
  }

  /** Events per second over the last minute, per counter. */
  rates(now: number): Record<CounterName, number> {
    const from = bucketOf(now - RATE_WINDOW_MS) + 1;
    const out = Object.fromEntries(COUNTER_NAMES.map((name) => [name, 0])) as Record<CounterName, number>;
    for (const row of this.sql.exec<{ name: string; n: number }>(
      "SELECT name, sum(n) AS n FROM rate_buckets WHERE bucket >= ? GROUP BY name",
      from,
    )) {
      if ((COUNTER_NAMES as readonly string[]).includes(row.name)) {
        out[row.name as CounterName] = Math.round((row.n / (RATE_WINDOW_MS / 1000)) * 100) / 100;
      }
    }
    return out;
  }

  /** p50 / p99 of submit-to-success time over the last five minutes. */
  latency(now: number): { p50: number | null; p99: number | null; samples: number; counts: number[] } {
    const counts = this.histogram(bucketOf(now - LATENCY_WINDOW_MS) + 1).counts;
    return {
      counts,
      p50: quantileFromBuckets(counts, 0.5),
      p99: quantileFromBuckets(counts, 0.99),
      samples: counts.reduce((a, b) => a + b, 0),
    };
  }

  /** All-time histogram for Prometheus. */
  durationTotals(): { bounds: number[]; counts: number[]; sumMs: number; count: number } {
    const { counts, sumMs } = this.histogram(ALL_TIME, ALL_TIME);
    return { bounds: [...DURATION_BOUNDS_MS, Infinity], counts, sumMs, count: counts.reduce((a, b) => a + b, 0) };
  }

  private histogram(fromBucket: number, toBucket = Number.MAX_SAFE_INTEGER): { counts: number[]; sumMs: number } {
    const counts = new Array<number>(DURATION_BOUNDS_MS.length + 1).fill(0);
    let sumMs = 0;
    for (const row of this.sql.exec<{ le: number; n: number; sum_ms: number }>(
      "SELECT le, sum(n) AS n, sum(sum_ms) AS sum_ms FROM duration_buckets WHERE bucket BETWEEN ? AND ? GROUP BY le",
      fromBucket,
      toBucket,
    )) {
      counts[boundIndex(row.le)]! += row.n;
      sumMs += row.sum_ms;
    }
    return { counts, sumMs };
  }

  /** Drops rate and latency buckets older than an hour, once per new bucket. */
  private prune(bucket: number): void {
    if (bucket === this.lastPrunedBucket) return;
    this.lastPrunedBucket = bucket;
    const oldest = bucket - KEEP_MS / BUCKET_MS;
    this.sql.exec("DELETE FROM rate_buckets WHERE bucket < ?", oldest);
    this.sql.exec("DELETE FROM duration_buckets WHERE bucket <> 0 AND bucket < ?", oldest);
  }
}
