/** Settling leases: complete, fail and extend, one by one or as an agent's batch in one transaction. */
import { ApiError } from "../../../contract/errors.ts";
import type { Principal, Settlement, SettlementResult, TaskError, TaskRecord } from "../../../contract/records.ts";
import { failAttempt } from "./attempts.ts";
import type { TaskContext } from "./context.ts";
import { dependenciesSucceeded, finish } from "./dependencies.ts";
import { holding } from "./reads.ts";

export function complete(ctx: TaskContext, principal: Principal, id: string, leaseToken: string, result: string, now: number): TaskRecord {
  const row = holding(ctx, principal, id, leaseToken, now);
  ctx.stats.recordDurations([now - row.created_at]);
  if (row.agent_id !== null) ctx.opts.agentOutcome(row.agent_id, true, row.leased_at === null ? null : now - row.leased_at);
  return ctx.record(finish(ctx, { row, transition: "complete", status: "succeeded", result }, now));
}

export function fail(ctx: TaskContext, principal: Principal, id: string, leaseToken: string, error: TaskError, retryable: boolean, now: number): TaskRecord {
  return failAttempt(ctx, holding(ctx, principal, id, leaseToken, now), "failed", error, retryable, now);
}

export function extend(ctx: TaskContext, principal: Principal, id: string, leaseToken: string, extendMs: number | null, now: number): { expiresAt: number; tenant: string } {
  const row = holding(ctx, principal, id, leaseToken, now);
  const expiresAt = now + (extendMs ?? row.timeout_ms);
  ctx.sql.exec("UPDATE tasks SET lease_expires_at = ?1, timer_at = ?1, updated_at = ?2 WHERE seq = ?3", expiresAt, now, row.seq);
  ctx.timer(expiresAt);
  return { expiresAt, tenant: row.tenant };
}

/**
 * Applies an agent's settlements in order, all in the caller's transaction. A refused one (unknown task, stale
 * or expired lease) is refused before it writes anything, so it is reported and the others still apply.
 */
export function settle(ctx: TaskContext, principal: Principal, items: readonly Settlement[], now: number): SettlementResult[] {
  // The completions of a batch whose tasks are all distinct settle in one statement; whatever that does not
  // settle (an expired or stale lease, a task of another tenant held by a shared agent, ...) goes through the
  // exact path below, which also gives the precise error. With distinct tasks the order does not matter.
  const settled = new Map<string, string>();
  const completes = items.filter((i): i is Extract<Settlement, { action: "complete" }> => i.action === "complete");
  if (completes.length > 1 && new Set(items.map((i) => i.id)).size === items.length) {
    for (const [id, tenant] of completeMany(ctx, principal, completes, now)) settled.set(id, tenant);
  }
  return items.map((item): SettlementResult => {
    const tenant = settled.get(item.id);
    if (tenant !== undefined) return { id: item.id, status: "succeeded", tenant };
    try {
      switch (item.action) {
        case "complete": {
          const task = complete(ctx, principal, item.id, item.leaseToken, item.result, now);
          return { id: item.id, status: task.status, tenant: task.tenant };
        }
        case "fail": {
          const task = fail(ctx, principal, item.id, item.leaseToken, JSON.parse(item.error) as TaskError, item.retryable, now);
          return { id: item.id, status: task.status, tenant: task.tenant };
        }
        case "extend": {
          const { expiresAt, tenant } = extend(ctx, principal, item.id, item.leaseToken, item.extendMs, now);
          return { id: item.id, status: "leased", leaseExpiresAt: expiresAt, tenant };
        }
      }
    } catch (err) {
      if (err instanceof ApiError && (err.code === "not_found" || err.code === "lease_lost")) {
        const movedTo = err.code === "not_found" && err.details && !Array.isArray(err.details) && typeof err.details.movedTo === "number" ? err.details.movedTo : undefined;
        return movedTo === undefined ? { id: item.id, error: { code: err.code, message: err.message } } : { id: item.id, error: { code: err.code, message: err.message }, movedTo };
      }
      throw err;
    }
  });
}

/**
 * Completes many leased tasks in one UPDATE, for the cases the rule is plain: the current, unexpired lease of a
 * task the principal sees by tenant (and, for an agent credential, held by one of its agents). Answers the ids
 * it completed, with their tenants; the caller settles the others one by one.
 */
function completeMany(ctx: TaskContext, principal: Principal, items: readonly Extract<Settlement, { action: "complete" }>[], now: number): [string, string][] {
  const retention = ctx.opts.retentionMs();
  const done = ctx.sql
    .exec<{ seq: number; id: string; tenant: string; agent_id: string | null; lane: number; created_at: number; leased_at: number | null; lease_expires_at: null }>(
      `UPDATE tasks SET status = 'succeeded', result = v.result, error = NULL, lease_token = NULL, lease_expires_at = NULL,
         pending_deps = 0, finished_at = ?1, timer_at = ?2, updated_at = ?1
       FROM (SELECT value ->> '$.id' AS id, value ->> '$.token' AS token, value ->> '$.result' AS result FROM json_each(?3)) AS v
       WHERE tasks.id = v.id AND +tasks.status = 'leased' AND tasks.lease_token = v.token AND tasks.lease_expires_at > ?1
         AND (?4 = 1 OR tasks.tenant = ?5)
         AND (?6 = 0 OR tasks.agent_id IN (SELECT agent_id FROM agents WHERE registered_by = ?7))
       RETURNING tasks.seq, tasks.id, tasks.tenant, tasks.agent_id, tasks.lane, tasks.created_at, tasks.leased_at, tasks.lease_expires_at`,
      now,
      now + retention,
      JSON.stringify(items.map((i) => ({ id: i.id, token: i.leaseToken, result: i.result }))),
      principal.allTenants ? 1 : 0,
      principal.tenant,
      principal.agentOnly ? 1 : 0,
      principal.actor,
    )
    .toArray();
  if (done.length === 0) return [];
  ctx.stats.count("succeeded", done.length);
  ctx.stats.recordDurations(done.map((r) => now - r.created_at));
  ctx.timer(now + retention);
  for (const r of done) {
    ctx.moves.move("complete", r, "leased", "succeeded");
    if (r.agent_id !== null) ctx.opts.agentOutcome(r.agent_id, true, r.leased_at === null ? null : now - r.leased_at);
  }
  dependenciesSucceeded(ctx, done.map((r) => r.seq), now);
  return done.map((r) => [r.id, r.tenant]);
}
