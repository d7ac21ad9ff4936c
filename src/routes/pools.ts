import type { Routes } from "../openapi/route";
import { coordinator, directory } from "../pools";
import { presentTask } from "../presenters";
import { PoolParams } from "../schemas/agents";
import { ErrorSchema } from "../schemas/common";
import { ListTasksQuery, ListTasksResponse, PoolConfigPatch, PoolConfigSchema, PoolsResponse, PoolStatsResponse, RedriveBody, RedriveResponse } from "../schemas/pools";
import { unwrap } from "../shared/errors";
import { openTasks } from "../security/sealing";

const err = (description: string) => ({ description, schema: ErrorSchema });

export function poolRoutes(routes: Routes): void {
  routes.add(
    {
      method: "get",
      path: "/v1/pools",
      summary: "List pools with their task counts by status and agent counts by state",
      tag: "Pools",
      responses: { 200: { description: "the pools", schema: PoolsResponse } },
    },
    async (c) => {
      const entries = await directory(c.env).list(c.var.caller.allTenants ? null : c.var.caller.tenant);
      const pools = await Promise.all(
        entries.map(async ({ pool }) => ({ pool, ...unwrap(await coordinator(c.env, pool).counts(c.var.caller)) })),
      );
      return c.json({ pools });
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/pools/:pool",
      summary: "Pool stats: queue, agents, throughput and latency",
      tag: "Pools",
      params: PoolParams,
      responses: { 200: { description: "the stats", schema: PoolStatsResponse }, 404: err("no such pool") },
    },
    async (c, { params }) => c.json(unwrap(await coordinator(c.env, params.pool).stats(c.var.caller))),
  );

  routes.add(
    {
      method: "get",
      path: "/v1/pools/:pool/tasks",
      summary: "List a pool's tasks, optionally by status, oldest first",
      tag: "Pools",
      params: PoolParams,
      query: ListTasksQuery,
      responses: { 200: { description: "a page of tasks", schema: ListTasksResponse }, 400: err("bad query"), 404: err("no such pool") },
    },
    async (c, { params, query }) => {
      const page = unwrap(await coordinator(c.env, params.pool).listTasks(c.var.caller, query.status ?? null, query.limit, query.cursor ?? null));
      return c.json({ tasks: (await openTasks(c.env, page.tasks)).map(presentTask), cursor: page.cursor });
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/pools/:pool/dlq/redrive",
      summary: "Queue dead tasks again with attempts reset ({} for all)",
      tag: "Pools",
      audit: "dlq.redrive",
      params: PoolParams,
      body: RedriveBody,
      responses: { 200: { description: "how many were redriven", schema: RedriveResponse }, 404: err("no such pool") },
    },
    async (c, { params, body }) => c.json(unwrap(await coordinator(c.env, params.pool).redrive(c.var.caller, body.ids ?? null))),
  );

  routes.add(
    {
      method: "get",
      path: "/v1/pools/:pool/config",
      summary: "A pool's configuration",
      tag: "Pools",
      params: PoolParams,
      responses: { 200: { description: "the configuration", schema: PoolConfigSchema }, 404: err("no such pool") },
    },
    async (c, { params }) => c.json(unwrap(await coordinator(c.env, params.pool).getConfig(c.var.caller))),
  );

  routes.add(
    {
      method: "put",
      path: "/v1/pools/:pool/config",
      summary: "Change a pool's configuration (fields given are merged in)",
      tag: "Pools",
      audit: "pool.config",
      params: PoolParams,
      body: PoolConfigPatch,
      responses: { 200: { description: "the whole configuration", schema: PoolConfigSchema }, 400: err("bad values") },
    },
    async (c, { params, body }) => {
      c.set("audit", { target: `${params.pool}: ${JSON.stringify(body)}` });
      return c.json(unwrap(await coordinator(c.env, params.pool).updateConfig(c.var.caller, body)));
    },
  );
}
