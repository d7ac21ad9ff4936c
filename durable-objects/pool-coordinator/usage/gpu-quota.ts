/**
 * The per-tenant GPU quota of a pool shard (docs/resources.md, "GPU quota"): a submit of tasks that require a GPU
 * is refused with 429 `rate_limited` (`details.scope = "gpu_quota"`) while the tenant's GPU time over the last
 * hour has reached its `gpuSecondsPerHour`. The last hour is a sliding window over the hour buckets: the current
 * hour's GPU time plus the previous hour's weighted by the part of it still inside the window (as a sliding-window
 * rate limiter does). The GPU time held so far by the tenant's leased GPU tasks counts too (split over the same
 * buckets), so a long task cannot run the tenant far past its quota before it settles.
 */
import { ApiError } from "../../../contract/errors.ts";
import { HOUR_MS, heldUntil, splitByHour, type UsageLedger } from "./ledger.ts";

export interface GpuWindow {
  /** GPU milliseconds in the current hour bucket and the previous one, settled and held so far. */
  current: number;
  previous: number;
  /** Milliseconds since the current hour began. */
  elapsed: number;
}

/** The window's estimate of the last hour's GPU milliseconds. */
export function windowUsage(w: GpuWindow): number {
  return w.current + (w.previous * (HOUR_MS - w.elapsed)) / HOUR_MS;
}

/**
 * Seconds until the estimate falls below `limitMs` if no more GPU time were used: within this hour when the
 * previous hour's weight is what keeps it up, else after the next hour starts, as this hour's weight shrinks.
 * A limit of 0 never lets the estimate below it: one hour, then ask again.
 */
export function retryAfterSeconds(w: GpuWindow, limitMs: number): number {
  let waitMs: number;
  if (limitMs <= 0) waitMs = HOUR_MS;
  else if (w.current >= limitMs) waitMs = HOUR_MS - w.elapsed + HOUR_MS * (1 - limitMs / w.current);
  else waitMs = HOUR_MS * (1 - (limitMs - w.current) / w.previous) - w.elapsed;
  // Strictly past the moment it reaches the limit: whole seconds, rounded down, plus one.
  return Math.max(1, Math.floor(waitMs / 1000) + 1);
}

/** The tenant's window now: settled buckets plus what its leased GPU tasks held so far. */
export function gpuWindow(sql: SqlStorage, ledger: UsageLedger, tenant: string, now: number): GpuWindow {
  const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
  const settled = ledger.gpuMsIn(tenant, [hour, hour - HOUR_MS]);
  let current = settled.get(hour) ?? 0;
  let previous = settled.get(hour - HOUR_MS) ?? 0;
  const held = sql.exec<{ leased_at: number | null; lease_expires_at: number; gpu: number }>(
    // Leased tasks only, through their partial index (bounded by the agents' slots, not by the queue).
    `SELECT t.leased_at, t.lease_expires_at, l.gpu FROM tasks AS t INDEXED BY tasks_by_agent JOIN lanes AS l ON l.id = t.lane
     WHERE t.status = 'leased' AND t.tenant = ?1 AND l.gpu > 0`,
    tenant,
  );
  for (const r of held) {
    if (r.leased_at === null) continue;
    for (const { hour: h, ms } of splitByHour(Math.max(r.leased_at, hour - HOUR_MS), Math.max(r.leased_at, heldUntil({ expiresAt: r.lease_expires_at }, now)))) {
      if (h === hour) current += ms * r.gpu;
      else if (h === hour - HOUR_MS) previous += ms * r.gpu;
    }
  }
  return { current, previous, elapsed: now - hour };
}

/**
 * Refuses when the tenant is at or over `limitSeconds` (this shard's share of it) and any of the inputs requires
 * a GPU; `gpuIndexes` are those inputs' positions. Null limit: nothing to check.
 */
export function checkGpuQuota(
  sql: SqlStorage,
  ledger: UsageLedger,
  where: { pool: string; shard: number; shards: number },
  tenant: string,
  limitSeconds: number | null,
  gpuIndexes: readonly number[],
  now: number,
): void {
  if (limitSeconds === null || gpuIndexes.length === 0) return;
  const limitMs = (limitSeconds * 1000) / Math.max(1, where.shards);
  const w = gpuWindow(sql, ledger, tenant, now);
  const used = windowUsage(w);
  if (used < limitMs) return;
  const retry = retryAfterSeconds(w, limitMs);
  const share = where.shards > 1 ? ` (shard ${where.shard}'s share over ${where.shards} active shards)` : "";
  throw new ApiError("rate_limited", `tenant ${tenant} used ${Math.round(used) / 1000} GPU-seconds in the last hour in pool ${where.pool}, at or over its ${limitSeconds} per hour${share}`, {
    scope: "gpu_quota",
    retryAfterSeconds: retry,
    gpuSecondsPerHour: limitSeconds,
    usedGpuSeconds: Math.round(used) / 1000,
    // The first input that requires a GPU (the gateway names it in a batch: `tasks.<n>.requires.gpu`), and how many do.
    field: "requires.gpu",
    index: gpuIndexes[0]!,
    gpuTasks: gpuIndexes.length,
  });
}
