import { ApiError } from "../../../contract/errors.ts";
import type { Principal } from "../../../contract/records.ts";
import type { TaskContext } from "./context.ts";

/** How long a tenant over its quota is told to wait before submitting again. */
const QUOTA_RETRY_SECONDS = 5;

export function quotaExceeded(ctx: TaskContext, tenant: string, quota: number): ApiError {
  const shards = ctx.opts.quotaShards();
  const where = shards > 1 ? ` shard ${ctx.opts.shard} of pool ${ctx.opts.pool} (its share of the quota over ${shards} active shards)` : ` pool ${ctx.opts.pool}`;
  return new ApiError("rate_limited", `tenant ${tenant} may have at most ${quota} unfinished tasks in${where}`, {
    scope: "quota",
    quota,
    retryAfterSeconds: QUOTA_RETRY_SECONDS,
  });
}

/**
 * Refuses, as a submit of these tasks would, when they cannot fit in the tenant's quota: for a batch over
 * several pools, checked in every pool before any of them commits. Tasks whose idempotency key already names
 * a task add nothing.
 */
export function checkQuota(ctx: TaskContext, principal: Principal, idempotencyKeys: readonly (string | null)[]): void {
  const keys = idempotencyKeys.filter((k): k is string => k !== null);
  const repeats =
    keys.length === 0
      ? 0
      : ctx.sql
          .exec<{ n: number }>(
            "SELECT count(*) AS n FROM tasks WHERE tenant = ? AND idempotency_key IN (SELECT DISTINCT value FROM json_each(?))",
            principal.tenant,
            JSON.stringify(keys),
          )
          .one().n;
  const added = idempotencyKeys.length - repeats - (keys.length - new Set(keys).size);
  const quota = ctx.opts.maxUnfinished(principal.tenant);
  if (ctx.counts.unfinishedOf(principal.tenant) + added > quota) throw quotaExceeded(ctx, principal.tenant, quota);
}
