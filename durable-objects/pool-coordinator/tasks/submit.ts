import { ApiError, type FieldProblem } from "../../../contract/errors.ts";
import { isFinal, type Principal, type SubmitOutcome, type TaskInput, type TaskRecord, type TaskStatus } from "../../../contract/records.ts";
import { parseTaskId } from "../../../contract/ids.ts";
import { newTaskId } from "../../../lib/random.ts";
import { blobKeysOf } from "../../../lib/security/blob-refs.ts";
import type { TaskContext } from "./context.ts";
import { dependencyError, waitFor } from "./dependencies.ts";
import { quotaExceeded } from "./quota.ts";
import type { TaskRow } from "./rows.ts";

/**
 * Inserts tasks in input order. A task whose idempotency key this tenant already used in this pool is not
 * inserted again: the existing task is answered with `created: false`.
 */
export function submit(ctx: TaskContext, principal: Principal, inputs: readonly TaskInput[], now: number): SubmitOutcome[] {
  const out: SubmitOutcome[] = [];
  let submitted = 0;
  const quota = ctx.opts.maxUnfinished(principal.tenant);
  let unfinished = ctx.counts.unfinishedOf(principal.tenant);
  const problems: FieldProblem[] = [];
  // Plain tasks (no idempotency key, no dependencies) are inserted many per statement; the buffer is written
  // before any other task, so seq (the FIFO order) still follows the input order.
  let plain: TaskInput[] = [];
  const flushPlain = () => {
    if (plain.length === 0) return;
    if (problems.length === 0) {
      for (const task of insertPlain(ctx, principal.tenant, plain, now)) out.push({ task, created: true });
      submitted += plain.length;
      unfinished += plain.length;
      if (unfinished > quota) throw quotaExceeded(ctx, principal.tenant, quota);
    }
    plain = [];
  };
  for (const [index, input] of inputs.entries()) {
    const keyed = input.concurrencyKey !== undefined || input.rateLimitKey !== undefined || input.debounce !== undefined;
    if (input.idempotencyKey === null && input.dependsOn.length === 0 && input.id === undefined && !keyed) {
      plain.push(input);
      continue;
    }
    flushPlain();
    // An id the gateway chose (to claim an idempotency key across shards first) that exists: the same task.
    if (input.id !== undefined) {
      const home = parseTaskId(input.id);
      if (!home || home.pool !== ctx.opts.pool || home.shard !== ctx.opts.shard) throw new Error(`task id ${input.id} does not name pool ${ctx.opts.pool} shard ${ctx.opts.shard}`);
      const same = ctx.row(input.id);
      if (same) {
        out.push({ task: ctx.record(same), created: false });
        continue;
      }
    }
    if (input.idempotencyKey !== null) {
      const existing = ctx.sql.exec<TaskRow>("SELECT * FROM tasks WHERE tenant = ? AND idempotency_key = ?", principal.tenant, input.idempotencyKey).toArray()[0];
      if (existing) {
        out.push({ task: ctx.record(existing), created: false });
        continue;
      }
    }
    if (input.debounce !== undefined) {
      const same = debounced(ctx, principal.tenant, input, now);
      if (same) {
        out.push({ task: same, created: false });
        continue;
      }
    }
    const deps: TaskRow[] = [];
    const dependsOn = [...new Set(input.dependsOn)];
    for (const [j, depId] of dependsOn.entries()) {
      const dep = ctx.row(depId);
      if (!dep || dep.tenant !== principal.tenant) problems.push({ index, field: `dependsOn.${j}`, message: `no task ${depId} in pool ${ctx.opts.pool}` });
      else deps.push(dep);
    }
    if (problems.length > 0) continue;
    const task = insert(ctx, principal.tenant, { ...input, dependsOn }, deps, now);
    out.push({ task, created: true });
    submitted++;
    if (!isFinal(task.status) && ++unfinished > quota) throw quotaExceeded(ctx, principal.tenant, quota);
  }
  flushPlain();
  if (problems.length > 0) throw new ApiError("invalid_request", "dependsOn must name existing tasks of the same pool and tenant", problems);
  ctx.stats.count("submitted", submitted);
  return out;
}

/**
 * Inserts tasks without idempotency keys or dependencies in one statement, in input order (seq follows the
 * order of the JSON array). They are queued, or waiting for their delay. The records are built from what was
 * written, so nothing is read back.
 */
function insertPlain(ctx: TaskContext, tenant: string, inputs: readonly TaskInput[], now: number): TaskRecord[] {
  const rows: TaskRow[] = inputs.map((input) => {
    const runAfter = input.delayMs > 0 ? now + input.delayMs : null;
    return {
      seq: 0,
      id: newTaskId(ctx.opts.pool, ctx.opts.shard),
      lane: ctx.lanes.resolve(tenant, input.requires).id,
      tenant,
      type: input.type,
      status: runAfter === null ? "queued" : "waiting",
      priority: input.priority,
      payload: input.payload,
      attempts: 0,
      max_attempts: input.maxAttempts,
      timeout_ms: input.timeoutMs,
      idempotency_key: null,
      depends_on: "[]",
      pending_deps: 0,
      result: null,
      error: null,
      agent_id: null,
      lease_token: null,
      lease_expires_at: null,
      run_after: runAfter,
      timer_at: runAfter,
      created_at: now,
      updated_at: now,
      finished_at: null,
      leased_at: null,
    };
  });
  ctx.sql.exec(
    `INSERT INTO tasks (id, lane, tenant, type, status, priority, payload, max_attempts, timeout_ms, idempotency_key,
       depends_on, pending_deps, error, run_after, timer_at, created_at, updated_at, finished_at, fairness_key)
     SELECT value ->> '$[0]', value ->> '$[1]', ?2, value ->> '$[2]', value ->> '$[3]', value ->> '$[4]', value ->> '$[5]',
       value ->> '$[6]', value ->> '$[7]', NULL, '[]', 0, NULL, value ->> '$[8]', value ->> '$[8]', ?3, ?3, NULL, value ->> '$[9]'
     FROM json_each(?1) ORDER BY key`,
    JSON.stringify(rows.map((r, i) => [r.id, r.lane, r.type, r.status, r.priority, r.payload, r.max_attempts, r.timeout_ms, r.run_after, inputs[i]!.fairnessKey ?? ""])),
    tenant,
    now,
  );
  for (const r of rows) {
    ctx.timer(r.timer_at);
    ctx.moves.move("submit", r, null, r.status);
  }
  return rows.map((r) => ctx.record(r));
}

function insert(ctx: TaskContext, tenant: string, input: TaskInput, deps: readonly TaskRow[], now: number): TaskRecord {
  const lane = ctx.lanes.resolve(tenant, input.requires);
  const broken = deps.find((d) => d.status === "dead" || d.status === "cancelled");
  const pending = deps.filter((d) => !isFinal(d.status));
  const delayMs = Math.max(input.delayMs, input.debounce?.delayMs ?? 0);
  const runAfter = delayMs > 0 ? now + delayMs : null;
  let status: TaskStatus = "queued";
  let timerAt: number | null = null;
  let finishedAt: number | null = null;
  let error: string | null = null;
  if (broken) {
    status = "dead";
    finishedAt = now;
    timerAt = now + ctx.opts.retentionMs();
    error = JSON.stringify(dependencyError(broken));
  } else if (pending.length > 0 || runAfter !== null) {
    status = "waiting";
    timerAt = runAfter;
  }
  const row = ctx.sql
    .exec<TaskRow>(
      `INSERT INTO tasks (id, lane, tenant, type, status, priority, payload, max_attempts, timeout_ms, idempotency_key,
         depends_on, pending_deps, error, run_after, timer_at, created_at, updated_at, finished_at, fairness_key,
         concurrency_key, rate_key, debounce_key, debounce_until)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      input.id ?? newTaskId(ctx.opts.pool, ctx.opts.shard),
      lane.id,
      tenant,
      input.type,
      status,
      input.priority,
      input.payload,
      input.maxAttempts,
      input.timeoutMs,
      input.idempotencyKey,
      JSON.stringify(input.dependsOn),
      broken ? 0 : pending.length,
      error,
      runAfter,
      timerAt,
      now,
      now,
      finishedAt,
      input.fairnessKey ?? "",
      input.concurrencyKey ?? "",
      input.rateLimitKey ?? "",
      input.debounce?.key ?? "",
      input.debounce?.maxWaitMs === undefined ? null : now + input.debounce.maxWaitMs,
    )
    .one();
  const became = ctx.moves.move("submit", row, null, status);
  if (broken) ctx.stats.count("dead", 1);
  else waitFor(ctx, row.seq, pending);
  ctx.timer(timerAt);
  // Held by a concurrency or rate key: the record is read again.
  return ctx.record(became === status ? row : ctx.rowBySeq(row.seq));
}

/**
 * A debounced submit (API.md): while a task of the same tenant, type and key was never leased, it takes the new
 * payload and starts `delayMs` from now (never later than its first submit plus `maxWaitMs`). Answers that task,
 * or undefined when there is none and a new task is inserted.
 */
function debounced(ctx: TaskContext, tenant: string, input: TaskInput, now: number): TaskRecord | undefined {
  const debounce = input.debounce!;
  const row = ctx.sql
    .exec<TaskRow>(
      `SELECT * FROM tasks INDEXED BY tasks_debounce WHERE debounce_key <> '' AND attempts = 0 AND status IN ('waiting', 'queued')
         AND tenant = ? AND type = ? AND debounce_key = ? ORDER BY seq LIMIT 1`,
      tenant,
      input.type,
      debounce.key,
    )
    .toArray()[0];
  // Waiting on dependencies, it is not replaced: those are its own.
  if (!row || row.pending_deps > 0) return undefined;
  const until = row.debounce_until as number | null;
  const runAfter = Math.min(now + Math.max(input.delayMs, debounce.delayMs), until ?? Number.POSITIVE_INFINITY);
  const released = row.payload === input.payload ? [] : blobKeysOf([row.payload]);
  const ready = runAfter <= now;
  const updated = ctx.sql
    .exec<TaskRow>(
      `UPDATE tasks SET payload = ?1, run_after = ?2, timer_at = ?3, status = ?4, held = 0, updated_at = ?5 WHERE seq = ?6 RETURNING *`,
      input.payload,
      ready ? null : runAfter,
      ready ? null : runAfter,
      ready ? "queued" : "waiting",
      now,
      row.seq,
    )
    .one();
  if (!ready) ctx.moves.move("debounce", row, row.status, "waiting");
  else if (row.status === "waiting") ctx.moves.move("wake", row, "waiting", "queued");
  ctx.timer(ready ? null : runAfter);
  if (released.length > 0) ctx.opts.blobsReleased(released, now);
  return ctx.record(ctx.rowBySeq(updated.seq));
}
