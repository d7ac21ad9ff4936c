import type { z } from "zod";
import { parseTaskId } from "../../contract/ids.ts";
import { isFinal, type Settlement } from "../../contract/records.ts";
import { DEFAULT_FAILURE } from "../../contract/wire/shapes.ts";
import { batchSubjects, batchTarget } from "../../lib/audit/records.ts";
import { presentTask } from "../../lib/present.ts";
import { outputCache } from "../mesh/cache/context.ts";
import { submitThroughCache, type CachedOutcome } from "../mesh/cache/submit.ts";
import { Gateway } from "../mesh/gateway.ts";
import { regionOf } from "../mesh/routing.ts";
import type { Routes } from "../openapi/route.ts";
import { ErrorSchema } from "../schemas/common.ts";
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
} from "../schemas/tasks.ts";
import { requirePoolBinding } from "../security/binding.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });

/** A submit's answer: the task, and where the output cache answered it from. */
function presentCached(outcome: CachedOutcome) {
  return outcome.cache ? { ...presentTask(outcome.task), cache: outcome.cache } : presentTask(outcome.task);
}

/** The pool a task id names (the route has validated the id's shape). */
function poolOfTask(id: string): string {
  return parseTaskId(id)?.pool ?? "";
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
        201: { description: "created", schema: Task, headers: { "x-daa-shard": "Shard", "x-daa-cache": "Cache" } },
        200: {
          description: "the task this idempotency key already created, or the task whose cached result answers this cacheable submit (`cache` says from where)",
          schema: Task,
          headers: { "x-daa-shard": "Shard", "x-daa-cache": "Cache" },
        },
        400: err("invalid task"),
      },
    },
    async (c, { body }) => {
      const gateway = new Gateway(c.env, c.req.raw);
      const [outcome] = await submitThroughCache(c.env, gateway, outputCache(c), c.var.caller, [body], false, regionOf(c.req.raw));
      if (!outcome) throw new Error("submit answered nothing");
      c.header("x-daa-shard", String(outcome.task.shard));
      if (outcome.cacheStatus) c.header("x-daa-cache", outcome.cacheStatus);
      const hit = outcome.cache ? ` (cache ${outcome.cacheStatus} of ${outcome.cache.sourceTaskId})` : "";
      c.set("audit", { target: outcome.cache ? `${outcome.cache.key}${hit}` : outcome.created ? outcome.task.id : `${outcome.task.id} (idempotent repeat)` });
      return c.json(presentCached(outcome), outcome.created ? 201 : 200);
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
      responses: { 201: { description: "the tasks in input order", schema: TasksResponse, headers: { "x-daa-shard": "Shard" } }, 400: err("invalid tasks") },
    },
    async (c, { body }) => {
      const gateway = new Gateway(c.env, c.req.raw);
      const tasks = (await submitThroughCache(c.env, gateway, outputCache(c), c.var.caller, body.tasks, true, regionOf(c.req.raw))).map(presentCached);
      c.header("x-daa-shard", [...new Set(tasks.map((t) => Number(t.shard)))].sort((a, b) => a - b).join(","));
      c.set("audit", { target: await batchTarget(tasks.map((t) => t.id)) });
      return c.json({ tasks }, 201);
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
    async (c, { params }) => c.json(presentTask(await new Gateway(c.env, c.req.raw).tasks.get(c.var.caller, params.id))),
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
      const task = await new Gateway(c.env, c.req.raw).tasks.waitResult(c.var.caller, params.id, query.waitMs);
      return c.json(presentTask(task), isFinal(task.status) ? 200 : 202);
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
      const task = await new Gateway(c.env, c.req.raw).tasks.cancel(c.var.caller, params.id);
      c.set("audit", { target: params.id, tenant: task.tenant });
      return c.json(presentTask(task));
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
      const task = await new Gateway(c.env, c.req.raw).tasks.complete(c.var.caller, params.id, body.leaseToken, JSON.stringify(body.result ?? null));
      c.set("audit", { target: params.id, tenant: task.tenant });
      return c.json(presentTask(task));
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
      const task = await new Gateway(c.env, c.req.raw).tasks.fail(c.var.caller, params.id, body.leaseToken, JSON.stringify(body.error ?? DEFAULT_FAILURE), body.retryable);
      c.set("audit", { target: params.id, tenant: task.tenant });
      return c.json(presentTask(task));
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
      const expiresAt = await new Gateway(c.env, c.req.raw).tasks.extend(c.var.caller, params.id, body.leaseToken, body.extendMs ?? null);
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
      const results = await new Gateway(c.env, c.req.raw).tasks.settle(c.var.caller, body.items.map(toSettlement), c.var.caller.pool);
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
