/**
 * Usage accounting in a pool shard (docs/resources.md, "Usage accounting"). Every lease that ends (complete, fail,
 * expiry, an agent lost or deleted, cancel of a leased task) is noted once, where every status change is noted
 * (tasks/transitions.ts, a move out of `leased`), and written at the end of the same transaction: its held time,
 * from `leased_at` to the settle (never past the lease's expiry), split over the hours it covered, into
 * `usage_hours` per (tenant, hour), and into `usage_totals` per tenant (the counters of /metrics, which never go
 * down). GPU time is the held time times the task's `requires.gpu`. Milliseconds are stored, so sums are exact.
 */
import type { PoolUsage, TenantUsageTotal } from "../../../contract/usage.ts";

export const USAGE_MIGRATION = `
  CREATE TABLE usage_hours (
    tenant TEXT NOT NULL,
    hour INTEGER NOT NULL,
    tasks INTEGER NOT NULL DEFAULT 0 CHECK (tasks >= 0),
    task_ms INTEGER NOT NULL DEFAULT 0 CHECK (task_ms >= 0),
    gpu_ms INTEGER NOT NULL DEFAULT 0 CHECK (gpu_ms >= 0),
    PRIMARY KEY (tenant, hour)
  ) WITHOUT ROWID;
  CREATE TABLE usage_totals (
    tenant TEXT PRIMARY KEY,
    tasks INTEGER NOT NULL DEFAULT 0 CHECK (tasks >= 0),
    task_ms INTEGER NOT NULL DEFAULT 0 CHECK (task_ms >= 0),
    gpu_ms INTEGER NOT NULL DEFAULT 0 CHECK (gpu_ms >= 0)
  ) WITHOUT ROWID;
`;

export const HOUR_MS = 3_600_000;

/** A lease that ended: who held it for whom, since when, until at most when, and the GPUs it required. */
export interface EndedLease {
  tenant: string;
  leasedAt: number;
  /** The lease's expiry; null when it cannot have passed (a completion checks it). */
  expiresAt: number | null;
  gpu: number;
}

/** The hour starts and the milliseconds of [start, end) in each, oldest first. */
export function splitByHour(start: number, end: number): { hour: number; ms: number }[] {
  const out: { hour: number; ms: number }[] = [];
  for (let at = start; at < end; ) {
    const hour = Math.floor(at / HOUR_MS) * HOUR_MS;
    const until = Math.min(end, hour + HOUR_MS);
    out.push({ hour, ms: until - at });
    at = until;
  }
  return out;
}

/** When a lease ending at `now` stopped holding its task: at `now`, or at its expiry if that came first. */
export function heldUntil(lease: { expiresAt: number | null }, now: number): number {
  return lease.expiresAt === null ? now : Math.min(now, lease.expiresAt);
}

interface Sums {
  tasks: number;
  taskMs: number;
  gpuMs: number;
}

export class UsageLedger {
  private readonly ended: EndedLease[] = [];

  constructor(private readonly sql: SqlStorage) {}

  /** Inside the transaction that ended the lease (no write yet: `flush` writes them all at its end). */
  note(lease: EndedLease): void {
    this.ended.push(lease);
  }

  /** At the end of the transaction, inside it: one upsert per (tenant, hour) and per tenant touched. */
  flush(now: number): void {
    if (this.ended.length === 0) return;
    const hours = new Map<string, Sums & { tenant: string; hour: number }>();
    const totals = new Map<string, Sums>();
    const add = (s: Sums, tasks: number, ms: number, gpu: number) => {
      s.tasks += tasks;
      s.taskMs += ms;
      s.gpuMs += ms * gpu;
    };
    for (const lease of this.ended.splice(0)) {
      const end = Math.max(lease.leasedAt, heldUntil(lease, now));
      const settledHour = Math.floor(now / HOUR_MS) * HOUR_MS;
      // The task counts in the hour it settled; its time in the hours it was held.
      const parts = splitByHour(lease.leasedAt, end);
      if (!parts.some((p) => p.hour === settledHour)) parts.push({ hour: settledHour, ms: 0 });
      for (const { hour, ms } of parts) {
        const key = `${lease.tenant}\n${hour}`;
        let s = hours.get(key);
        if (!s) hours.set(key, (s = { tenant: lease.tenant, hour, tasks: 0, taskMs: 0, gpuMs: 0 }));
        add(s, hour === settledHour ? 1 : 0, ms, lease.gpu);
      }
      let t = totals.get(lease.tenant);
      if (!t) totals.set(lease.tenant, (t = { tasks: 0, taskMs: 0, gpuMs: 0 }));
      add(t, 1, end - lease.leasedAt, lease.gpu);
    }
    for (const s of hours.values()) {
      this.sql.exec(
        `INSERT INTO usage_hours (tenant, hour, tasks, task_ms, gpu_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant, hour) DO UPDATE SET tasks = tasks + ?3, task_ms = task_ms + ?4, gpu_ms = gpu_ms + ?5`,
        s.tenant,
        s.hour,
        s.tasks,
        s.taskMs,
        s.gpuMs,
      );
    }
    for (const [tenant, s] of totals) {
      this.sql.exec(
        `INSERT INTO usage_totals (tenant, tasks, task_ms, gpu_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant) DO UPDATE SET tasks = tasks + ?2, task_ms = task_ms + ?3, gpu_ms = gpu_ms + ?4`,
        tenant,
        s.tasks,
        s.taskMs,
        s.gpuMs,
      );
    }
  }

  /** After a rolled-back transaction. */
  discard(): void {
    this.ended.length = 0;
  }

  /**
   * The tenant's usage here over the hour buckets that overlap [from, to): a bucket counts whole (the window is
   * resolved to hours). Null when it has none.
   */
  read(pool: string, tenant: string, from: number, to: number): PoolUsage | null {
    const first = Math.floor(from / HOUR_MS) * HOUR_MS;
    const row = this.sql
      .exec<{ n: number; tasks: number | null; task_ms: number | null; gpu_ms: number | null }>(
        "SELECT count(*) AS n, sum(tasks) AS tasks, sum(task_ms) AS task_ms, sum(gpu_ms) AS gpu_ms FROM usage_hours WHERE tenant = ? AND hour >= ? AND hour < ?",
        tenant,
        first,
        to,
      )
      .one();
    if (row.n === 0) return null;
    return { pool, tasks: row.tasks ?? 0, taskSeconds: (row.task_ms ?? 0) / 1000, gpuSeconds: (row.gpu_ms ?? 0) / 1000 };
  }

  /** Every tenant's totals since the shard began. */
  totals(): TenantUsageTotal[] {
    return this.sql
      .exec<{ tenant: string; tasks: number; task_ms: number; gpu_ms: number }>("SELECT tenant, tasks, task_ms, gpu_ms FROM usage_totals ORDER BY tenant")
      .toArray()
      .map((r) => ({ tenant: r.tenant, tasks: r.tasks, taskSeconds: r.task_ms / 1000, gpuSeconds: r.gpu_ms / 1000 }));
  }

  /** The tenant's GPU milliseconds in the buckets of these hours (settled leases only). */
  gpuMsIn(tenant: string, hours: readonly number[]): Map<number, number> {
    const out = new Map<number, number>(hours.map((h) => [h, 0]));
    for (const r of this.sql.exec<{ hour: number; gpu_ms: number }>(
      "SELECT hour, gpu_ms FROM usage_hours WHERE tenant = ? AND hour IN (SELECT value FROM json_each(?))",
      tenant,
      JSON.stringify(hours),
    )) {
      out.set(r.hour, r.gpu_ms);
    }
    return out;
  }
}
