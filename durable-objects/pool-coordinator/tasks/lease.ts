import type { LeasedTask } from "../../../contract/records.ts";
import { randomToken } from "../../../lib/random.ts";
import { mergeReady, type AgentFit, type ReadyRef } from "../queue-rules.ts";
import { anyNeedsResources, fitsIn, holdings, minus } from "../allocation.ts";
import type { TaskContext } from "./context.ts";
import { readyFair } from "./fairness.ts";
import type { TaskRow } from "./rows.ts";

/** Most leases one statement writes (its JSON parameter stays far below the 2 MB a bound string may have). */
export const LEASE_CHUNK = 1024;

/**
 * The first `n` ready tasks an agent of this fit may take, in serving order, with their lanes. Reads only. The
 * order is the pool's `scheduling`: fair (tasks/fairness.ts) or priority then arrival.
 */
export function ready(ctx: TaskContext, agent: AgentFit, n: number): (ReadyRef & { lane: number })[] {
  if (n <= 0) return [];
  const lanes = ctx.lanes.fitting(agent);
  if (ctx.opts.scheduling() === "fair") return readyFair(ctx, lanes.map((lane) => lane.id), n);
  const heads = lanes.map((lane) =>
    ctx.sql
      .exec<{ seq: number; priority: number; lane: number }>(
        "SELECT seq, priority, lane FROM tasks WHERE lane = ? AND status = 'queued' ORDER BY priority DESC, seq LIMIT ?",
        lane.id,
        n,
      )
      .toArray(),
  );
  return mergeReady(heads, n);
}

/**
 * Leases these queued tasks, each to its agent, in one statement; each lease gets its own fresh token. Answers
 * them in the order given. A task that is not queued any more breaks the caller's plan: it throws, and the
 * transaction rolls back.
 */
export function leaseTo(ctx: TaskContext, assignments: readonly { seq: number; agentId: string }[], now: number): LeasedTask[] {
  if (assignments.length === 0) return [];
  const rows: TaskRow[] = [];
  // In chunks: a round can lease a thousand tasks to each of a thousand agents, and one bound string is limited
  // (2 MB on Cloudflare).
  for (let from = 0; from < assignments.length; from += LEASE_CHUNK) {
    const chunk = assignments.slice(from, from + LEASE_CHUNK);
    const cursor = ctx.sql.exec<TaskRow>(
      `UPDATE tasks SET status = 'leased', attempts = attempts + 1, agent_id = v.agent, lease_token = v.token,
         lease_expires_at = ?1 + timeout_ms, timer_at = ?1 + timeout_ms, updated_at = ?1, leased_at = ?1
       FROM (SELECT value ->> '$.seq' AS seq, value ->> '$.token' AS token, value ->> '$.agent' AS agent FROM json_each(?2)) AS v
       WHERE tasks.seq = v.seq AND +tasks.status = 'queued' RETURNING *`,
      now,
      JSON.stringify(chunk.map(({ seq, agentId }) => ({ seq, token: randomToken(16), agent: agentId }))),
    );
    for (const row of cursor) rows.push(row);
  }
  if (rows.length !== assignments.length) throw new Error(`lease of ${assignments.length - rows.length} task(s) that are not queued`);
  const bySeq = new Map(rows.map((r) => [r.seq, r]));
  const leased: LeasedTask[] = [];
  for (const { seq } of assignments) {
    const row = bySeq.get(seq)!;
    const record = ctx.record(row);
    if (record.status !== "leased") throw new Error(`task ${row.id} is ${record.status} after its lease`);
    leased.push({ ...record, attempt: row.attempts, leaseToken: row.lease_token! });
    ctx.timer(row.lease_expires_at);
    ctx.moves.move("lease", row, "queued", "leased");
  }
  ctx.stats.count("leased", leased.length);
  return leased;
}

/**
 * Leases up to `n` ready tasks the agent fits, highest priority first, then oldest, within its free resources
 * (allocation.ts): a task that does not fit what is left is skipped, and the tasks after it that fit are
 * still leased.
 */
export function lease(ctx: TaskContext, agent: AgentFit & { agentId: string }, n: number, now: number): LeasedTask[] {
  if (n <= 0) return [];
  let free = holdings(ctx.sql, ctx.lanes, [agent]).get(agent.agentId)!.free;
  const out: LeasedTask[] = [];
  // Each pass reads the heads of the lanes that still fit what is free and leases, in order, those that fit
  // together; the first always fits, so every pass leases at least one task or finds none ready.
  while (out.length < n) {
    const fit = { ...agent, resources: free };
    const want = n - out.length;
    const refs = ready(ctx, fit, want);
    if (!anyNeedsResources(ctx.lanes.fitting(fit))) {
      out.push(...leaseTo(ctx, refs.map(({ seq }) => ({ seq, agentId: agent.agentId })), now));
      break;
    }
    const picked: { seq: number; agentId: string }[] = [];
    for (const ref of refs) {
      const requires = ctx.lanes.get(ref.lane).requires;
      if (!fitsIn(requires, free)) continue;
      free = minus(free, requires);
      picked.push({ seq: ref.seq, agentId: agent.agentId });
    }
    out.push(...leaseTo(ctx, picked, now));
    if (picked.length === 0 || refs.length < want) break;
  }
  return out;
}
