/** A tenant's usage of the pools (API.md, "Workflows, fairness and schedules"; docs/resources.md, "Usage accounting"). */
import { ApiError } from "../../contract/errors.ts";
import { Gateway } from "../mesh/gateway.ts";
import type { Routes } from "../openapi/route.ts";
import { TenantParams } from "../schemas/auth.ts";
import { ErrorSchema } from "../schemas/common.ts";
import { UsageQuery, UsageResponse } from "../schemas/usage.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });

export function usageRoutes(routes: Routes): void {
  routes.add(
    {
      method: "get",
      path: "/v1/tenants/:tenant/usage",
      summary: "A tenant's task-seconds and GPU-seconds per pool over a window (default the last 24 hours)",
      tag: "Tenants, keys, tokens, audit",
      params: TenantParams,
      query: UsageQuery,
      responses: { 200: { description: "the usage, per pool the tenant used in the window", schema: UsageResponse }, 400: err("bad from or to"), 404: err("another tenant") },
    },
    async (c, { params, query }) => {
      const caller = c.var.caller;
      // Operators and the bootstrap key see every tenant's usage; a tenant's admin and auditor only their own.
      if (!caller.allTenants && !caller.fleetOperator && caller.tenant !== params.tenant) throw new ApiError("not_found", `no tenant ${params.tenant}`);
      const pools = await new Gateway(c.env, c.req.raw).pools.usage(caller, params.tenant, query.from, query.to);
      return c.json({ tenant: params.tenant, from: new Date(query.from).toISOString(), to: new Date(query.to).toISOString(), pools });
    },
  );
}
