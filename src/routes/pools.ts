import { presentTask } from "../../lib/present.ts";
import { Gateway } from "../mesh/gateway.ts";
import type { Routes } from "../openapi/route.ts";
import { PoolParams } from "../schemas/agents.ts";
import { ErrorSchema } from "../schemas/common.ts";
import {
  ListTasksQuery,
  ListTasksResponse,
  PoolConfigPatch,
  PoolConfigSchema,
  PoolsResponse,
  PoolStatsResponse,
  PoolTenantParams,
  RedriveBody,
  RedriveResponse,
  TenantValuesPatch,
  TenantValuesSchema,
} from "../schemas/pools.ts";

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
      const gateway = new Gateway(c.env, c.req.raw);
      const entries = await gateway.placement.directory().list(c.var.caller.allTenants ? null : c.var.caller.tenant);
      const pools = await Promise.all(entries.map(async ({ pool }) => ({ pool, ...(await gateway.pools.counts(c.var.caller, pool)) })));
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
    async (c, { params }) => c.json(await new Gateway(c.env, c.req.raw).pools.stats(c.var.caller, params.pool)),
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
      const page = await new Gateway(c.env, c.req.raw).tasks.list(c.var.caller, params.pool, query.status ?? null, query.limit, query.cursor ?? null);
      return c.json({ tasks: page.tasks.map(presentTask), cursor: page.cursor });
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
    async (c, { params, body }) => c.json(await new Gateway(c.env, c.req.raw).pools.redrive(c.var.caller, params.pool, body.ids ?? null)),
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
    async (c, { params }) => c.json(await new Gateway(c.env, c.req.raw).pools.config(c.var.caller, params.pool)),
  );

  routes.add(
    {
      method: "put",
      path: "/v1/pools/:pool/config",
      summary: "Change a pool's configuration (fields given are merged in): operators and the bootstrap key only",
      tag: "Pools",
      audit: "pool.config",
      params: PoolParams,
      body: PoolConfigPatch,
      responses: { 200: { description: "the whole configuration", schema: PoolConfigSchema }, 400: err("bad values") },
    },
    async (c, { params, body }) => {
      c.set("audit", { target: `${params.pool}: ${JSON.stringify(body)}` });
      return c.json(await new Gateway(c.env, c.req.raw).pools.updateConfig(c.var.caller, params.pool, body));
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/pools/:pool/tenants/:tenant",
      summary: "One tenant's own values in a pool (quota, fair-share weight, GPU-seconds per hour), effective",
      tag: "Pools",
      params: PoolTenantParams,
      responses: { 200: { description: "the values", schema: TenantValuesSchema }, 404: err("no such pool, or another tenant's") },
    },
    async (c, { params }) => c.json(await new Gateway(c.env, c.req.raw).pools.tenantValues(c.var.caller, params.pool, params.tenant)),
  );

  routes.add(
    {
      method: "put",
      path: "/v1/pools/:pool/tenants/:tenant",
      summary: "Change one tenant's values in a pool: its admin may lower its own maxUnfinished; the rest is the operators'",
      tag: "Pools",
      audit: "pool.tenant",
      params: PoolTenantParams,
      body: TenantValuesPatch,
      responses: {
        200: { description: "the effective values", schema: TenantValuesSchema },
        400: err("bad values, or maxUnfinished above the pool's ceiling"),
        403: err("a value only an operator may set"),
        404: err("another tenant's"),
      },
    },
    async (c, { params, body }) => {
      c.set("audit", { target: `${params.pool}/${params.tenant}: ${JSON.stringify(body)}`, tenant: params.tenant });
      return c.json(await new Gateway(c.env, c.req.raw).pools.updateTenantValues(c.var.caller, params.pool, params.tenant, body));
    },
  );
}
