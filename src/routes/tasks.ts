import type { z } from "zod";
import { parseTaskId, shardName } from "../../durable-objects/pool-coordinator/ids";
import { isFinal } from "../../durable-objects/pool-coordinator/queue-rules";
import type { Settlement, SettlementResult, TaskInput } from "../../durable-objects/pool-coordinator/types";
import type { Routes } from "../openapi/route";
import { coordinator, coordinatorOfTask, poolOf } from "../pools";
import { presentTask } from "../presenters";
import { ErrorSchema, POOL_NAME } from "../schemas/common";
import {
  CompleteBody,
  ExtendBody,
  ExtendResponse,
  FailBody,
  ResultQuery,
  SettleBody,
  SettleItem,
  SettleResponse,
  SubmitBatch,
  SubmitTask,
  Task,
  TaskIdParams,
  TasksResponse,
} from "../schemas/tasks";
import { ApiError, unwrap, type ErrorBody, type ErrorDetails, type Outcome } from "../shared/errors";
import { idsOfOtherTenants } from "../security/audit";
import { requirePoolBinding } from "../security/binding";
import { openTask, sealPayload } from "../security/sealing";
import type { SubmitOutcome } from "../../durable-objects/pool-coordinator/tasks";

const err = (description: string) => ({ description, schema: ErrorSchema });

interface Placed {
  pool: string;
  input: TaskInput;
}

/** A validated submission placed in its pool, or the problems that keep it out (field paths under `prefix`). */
function place(task: z.output<typeof SubmitTask>, prefix: string): Placed | { field: string; message: string }[] {
  const pool = poolOf(task.type, task.pool);
  if (!POOL_NAME.test(pool)) {
    return [{ field: `${prefix}pool`, message: `the pool taken from type "${task.type}" is not a valid pool name; pass pool explicitly` }];
  }
  const problems = task.dependsOn.flatMap((dep, j) => {
    const owner = parseTaskId(dep);
    return owner && owner.pool === pool && owner.shard === 0
      ? []
      : [{ field: `${prefix}dependsOn.${j}`, message: `${dep} is not a task of pool ${pool}` }];
  });
  if (problems.length > 0) return problems;
  return {
    pool,
    input: {
      type: task.type,
      payload: JSON.stringify(task.payload ?? {}),
      priority: task.priority,
      requires: { capabilities: [], cpu: 0, memoryMb: 0, gpu: 0, ...task.requires },
      idempotencyKey: task.idempotencyKey ?? null,
      maxAttempts: task.maxAttempts,
      timeoutMs: task.timeoutMs,
      delayMs: task.delayMs,
      dependsOn: task.dependsOn,
    },
  };
}

const DEFAULT_FAILURE = { message: "the agent reported a failure" };

/** The pool a task id names (the route has validated the id's shape). */
function poolOfTask(id: string): string {
  return parseTaskId(id)?.pool ?? "";
}

/** A batch is one audit record: how many, and a SHA-256 over the ids in order (API.md). */
async function batchTarget(ids: readonly string[]): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(ids.join("\n"))));
  return `${ids.length} tasks sha256:${[...digest].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * The tenants other than the actor's whose tasks a batch touched, each with a target over its own ids: their
 * auditors see what a shared agent or an operator did to their tasks (the actor's record names the whole batch).
 */
async function batchSubjects(items: readonly ({ id: string; tenant: string } | { id: string })[], actorTenant: string): Promise<{ tenant: string; target: string }[]> {
  return Promise.all([...idsOfOtherTenants(items, actorTenant)].map(async ([tenant, ids]) => ({ tenant, target: await batchTarget(ids) })));
}

/** A validated settle item as the coordinator takes it: results and errors as JSON text. */
function toSettlement(item: z.output<typeof SettleItem>): Settlement {
  switch (item.action) {
    case "complete":
      return { action: "complete", id: item.id, leaseToken: item.leaseToken, result: JSON.stringify(item.result ?? null) };
    case "fail":
      return { action: "fail", id: item.id, leaseToken: item.leaseToken, error: JSON.stringify(item.error ?? DEFAULT_FAILURE), retryable: item.retryable };
    case "extend":
      return { action: "extend", id: item.id, leaseToken: item.leaseToken, extendMs: item.extendMs ?? null };
  }
}

/** Problems the coordinator reported with indexes into its slice, re-addressed to the whole batch. */
function readdress(details: ErrorDetails | undefined, indexes: readonly number[]): ErrorDetails | undefined {
  if (!Array.isArray(details)) return details;
  return details.map((d) => (d.index === undefined ? d : { field: `tasks.${indexes[d.index]}.${d.field}`, message: d.message }));
}

export function taskRoutes(routes: Routes): void {
  routes.add(
    {
      method: "post",
      path: "/v1/tasks",
      summary: "Submit a task",
      tag: "Tasks",
      audit: "task.submit",
      body: SubmitTask,
      responses: {
        201: { description: "created", schema: Task },
        200: { description: "the task this idempotency key already created", schema: Task },
        400: err("invalid task"),
      },
    },
    async (c, { body }) => {
      const placed = place(body, "");
      if (Array.isArray(placed)) throw new ApiError("invalid_request", "the task is not valid", placed);
      const input = { ...placed.input, payload: await sealPayload(c.env, c.var.caller.tenant, placed.input.payload) };
      const [outcome] = unwrap(await coordinator(c.env, placed.pool).submit(c.var.caller, [input], [placed.input.payload]));
      if (!outcome) throw new Error("submit answered nothing");
      c.set("audit", { target: outcome.created ? outcome.task.id : `${outcome.task.id} (idempotent repeat)` });
      const sealed = new Map([[input.payload, placed.input.payload]]);
      return c.json(presentTask(await openTask(c.env, outcome.task, sealed)), outcome.created ? 201 : 200);
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/tasks/batch",
      summary: "Submit up to 1000 tasks; one transaction per pool",
      tag: "Tasks",
      audit: "task.submit_batch",
      body: SubmitBatch,
      responses: { 201: { description: "the tasks in input order", schema: TasksResponse }, 400: err("invalid tasks") },
    },
    async (c, { body }) => {
      const byPool = new Map<string, { indexes: number[]; inputs: TaskInput[] }>();
      const problems: { field: string; message: string }[] = [];
      body.tasks.forEach((task, i) => {
        const placed = place(task, `tasks.${i}.`);
        if (Array.isArray(placed)) return void problems.push(...placed);
        const group = byPool.get(placed.pool) ?? { indexes: [], inputs: [] };
        group.indexes.push(i);
        group.inputs.push(placed.input);
        byPool.set(placed.pool, group);
      });
      // What this request sealed, envelope -> plaintext: the answer shows the tasks it created without decrypting.
      const sealed = new Map<string, string>();
      for (const group of byPool.values()) {
        group.inputs = await Promise.all(
          group.inputs.map(async (t) => {
            const payload = await sealPayload(c.env, c.var.caller.tenant, t.payload);
            sealed.set(payload, t.payload);
            return { ...t, payload };
          }),
        );
      }
      if (problems.length > 0) throw new ApiError("invalid_request", "some tasks are not valid; none was submitted", problems);
      const groups = [...byPool.entries()];
      // Several pools cannot commit atomically together, so dependencies (the one thing a coordinator can
      // still refuse) are checked in every pool before any of them commits.
      if (groups.length > 1 && body.tasks.some((t) => t.dependsOn.length > 0)) {
        const missing = await Promise.all(
          groups.map(async ([pool, g]) => {
            const found = unwrap(await coordinator(c.env, pool).missingDependencies(c.var.caller, g.inputs.flatMap((t) => t.dependsOn)));
            return found.map((id) => ({ field: `tasks (pool ${pool})`, message: `dependsOn names ${id}, which does not exist` }));
          }),
        );
        if (missing.flat().length > 0) throw new ApiError("invalid_request", "some dependencies do not exist; none was submitted", missing.flat());
      }
      // Likewise the quota: a pool that would refuse its part refuses the whole batch before any pool commits (a
      // concurrent submit can still take the room in between; that pool then refuses alone).
      if (groups.length > 1) {
        const checks = await Promise.all(groups.map(([pool, g]) => coordinator(c.env, pool).checkQuota(c.var.caller, g.inputs.map((t) => t.idempotencyKey))));
        for (const check of checks) unwrap(check);
      }
      const out = new Array<ReturnType<typeof presentTask>>(body.tasks.length);
      await Promise.all(
        groups.map(async ([pool, { indexes, inputs }]) => {
          const plaintexts = inputs.map((t) => sealed.get(t.payload)!);
          const result: Outcome<SubmitOutcome[]> = await coordinator(c.env, pool).submit(c.var.caller, inputs, plaintexts);
          if (!result.ok) throw new ApiError(result.error.code, result.error.message, readdress(result.error.details, indexes));
          const opened = await Promise.all(result.value.map((o) => openTask(c.env, o.task, sealed)));
          opened.forEach((task, k) => (out[indexes[k]!] = presentTask(task)));
        }),
      );
      c.set("audit", { target: await batchTarget(out.map((t) => t.id)) });
      return c.json({ tasks: out }, 201);
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/tasks/:id",
      summary: "Get a task",
      tag: "Tasks",
      params: TaskIdParams,
      responses: { 200: { description: "the task", schema: Task }, 404: err("no such task") },
    },
    async (c, { params }) => c.json(presentTask(await openTask(c.env, unwrap(await coordinatorOfTask(c.env, params.id).getTask(c.var.caller, params.id))))),
  );

  routes.add(
    {
      method: "get",
      path: "/v1/tasks/:id/result",
      summary: "Wait for a task to finish (long poll)",
      tag: "Tasks",
      params: TaskIdParams,
      query: ResultQuery,
      responses: {
        200: { description: "the task, final", schema: Task },
        202: { description: "the task, still not final after waitMs", schema: Task },
        404: err("no such task"),
      },
    },
    async (c, { params, query }) => {
      const task = unwrap(await coordinatorOfTask(c.env, params.id).waitResult(c.var.caller, params.id, query.waitMs));
      return c.json(presentTask(await openTask(c.env, task)), isFinal(task.status) ? 200 : 202);
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/tasks/:id/cancel",
      summary: "Cancel a task that is not final",
      tag: "Tasks",
      audit: "task.cancel",
      params: TaskIdParams,
      responses: { 200: { description: "the task, cancelled", schema: Task }, 404: err("no such task"), 409: err("already final") },
    },
    async (c, { params }) => {
      const task = unwrap(await coordinatorOfTask(c.env, params.id).cancel(c.var.caller, params.id));
      c.set("audit", { target: params.id, tenant: task.tenant });
      return c.json(presentTask(await openTask(c.env, task)));
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/tasks/:id/complete",
      summary: "Complete a leased task",
      tag: "Agents and leases",
      audit: "task.complete",
      params: TaskIdParams,
      body: CompleteBody,
      responses: { 200: { description: "the task, succeeded", schema: Task }, 404: err("no such task"), 409: err("lease_lost: not the current lease") },
    },
    async (c, { params, body }) => {
      requirePoolBinding(c.var.caller, poolOfTask(params.id));
      const result = JSON.stringify(body.result ?? null);
      const task = unwrap(await coordinatorOfTask(c.env, params.id).complete(c.var.caller, params.id, body.leaseToken, result));
      c.set("audit", { target: params.id, tenant: task.tenant });
      return c.json(presentTask(await openTask(c.env, task)));
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/tasks/:id/fail",
      summary: "Fail the current attempt of a leased task",
      tag: "Agents and leases",
      audit: "task.fail",
      params: TaskIdParams,
      body: FailBody,
      responses: {
        200: { description: "the task, waiting for a retry or dead", schema: Task },
        404: err("no such task"),
        409: err("lease_lost: not the current lease"),
      },
    },
    async (c, { params, body }) => {
      requirePoolBinding(c.var.caller, poolOfTask(params.id));
      const error = body.error ?? DEFAULT_FAILURE;
      const task = unwrap(await coordinatorOfTask(c.env, params.id).fail(c.var.caller, params.id, body.leaseToken, JSON.stringify(error), body.retryable));
      c.set("audit", { target: params.id, tenant: task.tenant });
      return c.json(presentTask(await openTask(c.env, task)));
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/tasks/:id/extend",
      summary: "Extend the lease of a task",
      tag: "Agents and leases",
      audit: "task.extend",
      params: TaskIdParams,
      body: ExtendBody,
      responses: { 200: { description: "the new expiry", schema: ExtendResponse }, 404: err("no such task"), 409: err("lease_lost: not the current lease") },
    },
    async (c, { params, body }) => {
      requirePoolBinding(c.var.caller, poolOfTask(params.id));
      const expiresAt = unwrap(await coordinatorOfTask(c.env, params.id).extend(c.var.caller, params.id, body.leaseToken, body.extendMs ?? null));
      return c.json({ leaseExpiresAt: new Date(expiresAt).toISOString() });
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/tasks/settle",
      summary: "Complete, fail or extend up to 1000 leases in one request (an extension of the contract)",
      tag: "Agents and leases",
      audit: "task.settle",
      body: SettleBody,
      responses: {
        200: { description: "one result per item, in input order: the task's status, or the error that refused it", schema: SettleResponse },
        400: err("invalid items"),
      },
    },
    async (c, { body }) => {
      const results = new Array<SettlementResult>(body.items.length);
      const byShard = new Map<string, { pool: string; shard: number; indexes: number[]; items: Settlement[] }>();
      body.items.forEach((item, i) => {
        const owner = parseTaskId(item.id);
        const bound = c.var.caller.pool;
        if (!owner || (bound !== null && owner.pool !== bound)) {
          return void (results[i] = { id: item.id, error: { code: "not_found", message: `no task ${item.id}` } });
        }
        const key = shardName(owner.pool, owner.shard);
        const group = byShard.get(key) ?? { ...owner, indexes: [], items: [] };
        group.indexes.push(i);
        group.items.push(toSettlement(item));
        byShard.set(key, group);
      });
      // A shard refuses as a whole when its pool does not exist (not_found) or requires a client certificate the
      // caller lacks (forbidden); its items report that code, and a refusal that left nothing applied is the answer.
      let applied = false;
      const refusals: ErrorBody[] = [];
      await Promise.all(
        [...byShard.values()].map(async ({ pool, shard, indexes, items }) => {
          const outcome: Outcome<SettlementResult[]> = await coordinator(c.env, pool, shard).settle(c.var.caller, items);
          if (outcome.ok) applied = true;
          else if (outcome.error.code === "forbidden") refusals.push(outcome.error);
          indexes.forEach((index, k) => {
            results[index] = outcome.ok
              ? outcome.value[k]!
              : { id: items[k]!.id, error: { code: outcome.error.code === "forbidden" ? "forbidden" : "not_found", message: outcome.error.message } };
          });
        }),
      );
      const refusal = refusals[0];
      if (refusal !== undefined && !applied) throw new ApiError(refusal.code, refusal.message, refusal.details);
      c.set("audit", { target: await batchTarget(body.items.map((item) => item.id)), subjects: await batchSubjects(results, c.var.caller.tenant) });
      return c.json({
        results: results.map((r) => {
          if ("error" in r) return r;
          const { tenant: _tenant, leaseExpiresAt, ...rest } = r;
          return leaseExpiresAt === undefined ? rest : { ...rest, leaseExpiresAt: new Date(leaseExpiresAt).toISOString() };
        }),
      });
    },
  );
}
