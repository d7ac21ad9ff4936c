/** Reading tasks: one by id (as the caller may see it), pages, the fencing check of a lease, and small lookups. */
import { ApiError } from "../../../contract/errors.ts";
import { TASK_STATUSES, type ListPage, type Principal, type TaskRecord, type TaskStatus } from "../../../contract/records.ts";
import type { TaskContext } from "./context.ts";
import { movedTo } from "./moves.ts";
import type { TaskRow } from "./rows.ts";

/**
 * No task `id` here. A task a drain handed to another shard says where (`details.movedTo`, and `moving` while the
 * hand-over is not confirmed yet): the gateway asks that shard. Tenant checks happen there.
 */
export function missingTask(ctx: TaskContext, id: string): ApiError {
  const moved = movedTo(ctx, id);
  return moved === null ? new ApiError("not_found", `no task ${id}`) : new ApiError("not_found", `task ${id} moved to shard ${moved.shard}`, { movedTo: moved.shard, moving: moved.pending });
}

/** The task, if the caller may see it; a task of another tenant is as good as missing. */
export function visible(ctx: TaskContext, principal: Principal, id: string): TaskRow {
  const row = ctx.row(id);
  if (!row) throw missingTask(ctx, id);
  if (!principal.allTenants && row.tenant !== principal.tenant) throw new ApiError("not_found", `no task ${id}`);
  return row;
}

export function get(ctx: TaskContext, principal: Principal, id: string): TaskRecord {
  return ctx.record(visible(ctx, principal, id));
}

/**
 * The task, if `leaseToken` is its current, unexpired lease: the fencing check of complete, fail and extend.
 * A lease past its expiry is lost even if the alarm has not yet run to requeue the task.
 */
export function holding(ctx: TaskContext, principal: Principal, id: string, leaseToken: string, now: number): TaskRow {
  const row = ctx.row(id);
  if (!row) throw missingTask(ctx, id);
  // Whoever may act for the agent holding the lease may settle it (a shared agent serves every tenant);
  // anyone else must at least see the task, and an agent credential only ever settles its own agents' leases.
  const sees = principal.allTenants || row.tenant === principal.tenant;
  // Asked only when it matters (another tenant's task, or an agent credential): it reads the agent's row.
  const holder = (!sees || principal.agentOnly) && row.status === "leased" && row.agent_id !== null && ctx.opts.mayActForAgent(principal, row.agent_id);
  if (!holder && !sees) throw new ApiError("not_found", `no task ${id}`);
  if (principal.agentOnly && !holder) {
    throw new ApiError("lease_lost", `task ${id} is not leased to an agent this credential registered`, { status: row.status });
  }
  if (row.status !== "leased" || row.lease_token !== leaseToken) {
    throw new ApiError("lease_lost", `the lease token is not the current lease of task ${id} (it is ${row.status})`, { status: row.status });
  }
  if (row.lease_expires_at !== null && row.lease_expires_at <= now) {
    throw new ApiError("lease_lost", `the lease of task ${id} expired at ${new Date(row.lease_expires_at).toISOString()}`, { status: "expired" });
  }
  return row;
}

export function list(ctx: TaskContext, principal: Principal, status: TaskStatus | null, limit: number, cursor: string | null): ListPage {
  const after = cursor === null ? 0 : decodeCursor(cursor);
  const args: SqlStorageValue[] = principal.allTenants ? [after] : [after, principal.tenant];
  const rows = ctx.sql.exec<TaskRow>(listQuery(status, !principal.allTenants), ...args, limit + 1).toArray();
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { tasks: page.map((r) => ctx.record(r)), cursor: rows.length > limit && last ? encodeCursor(last.seq) : null, after: page.map((r) => encodeCursor(r.seq)) };
}

/** Which of these ids name no task of the tenant in this pool (a batch checks before it commits). */
export function missing(ctx: TaskContext, principal: Principal, ids: readonly string[]): string[] {
  return ids.filter((id) => {
    const row = ctx.sql.exec<{ tenant: string }>("SELECT tenant FROM tasks WHERE id = ?", id).toArray()[0];
    return !row || row.tenant !== principal.tenant;
  });
}

/** The tenants of these tasks, by id (the coordinator seals a result with the key of its task's tenant). */
export function tenantsOf(ctx: TaskContext, ids: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  // One statement for any number of ids (bound parameters are limited to 100 per statement).
  for (const row of ctx.sql.exec<{ id: string; tenant: string }>("SELECT id, tenant FROM tasks WHERE id IN (SELECT value FROM json_each(?))", JSON.stringify(ids))) {
    out.set(row.id, row.tenant);
  }
  return out;
}

/** Tasks currently leased to an agent. */
export function inFlight(ctx: TaskContext, agentId: string): number {
  return ctx.sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE agent_id = ? AND status = 'leased'", agentId).one().n;
}

function encodeCursor(seq: number): string {
  return `c${seq.toString(36)}`;
}

function decodeCursor(cursor: string): number {
  const m = /^c([0-9a-z]{1,12})$/.exec(cursor);
  if (!m) throw new ApiError("invalid_request", "cursor is not one this API returned", [{ field: "cursor", message: "malformed" }]);
  return parseInt(m[1]!, 36);
}

/**
 * The statement of a page of tasks in submission order, optionally of one status and one tenant (parameters: the
 * seq to start after, the tenant when `byTenant`, the limit). The status is written as a literal so the planner can
 * use the partial index that holds it: `tasks_by_status` holds every status but leased, and the leased tasks (at
 * most the agents' concurrency) are read from `tasks_by_agent`.
 */
export function listQuery(status: TaskStatus | null, byTenant: boolean): string {
  if (status !== null && !TASK_STATUSES.includes(status)) throw new Error(`not a task status: ${String(status)}`);
  const from = status === "leased" ? "tasks INDEXED BY tasks_by_agent" : "tasks";
  const where = ["seq > ?", ...(status === null ? [] : [`status = '${status}'`]), ...(byTenant ? ["tenant = ?"] : [])];
  return `SELECT * FROM ${from} WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`;
}
