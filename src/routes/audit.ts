import type { Context } from "hono";
import { ApiError } from "../../contract/errors.ts";
import type { AuditRecord } from "../../lib/audit/chain.ts";
import type { AppEnv } from "../env.ts";
import type { Routes } from "../openapi/route.ts";
import { AuditPage, AuditQuery, AuditVerification, AuditVerifyQuery } from "../schemas/auth.ts";
import { ErrorSchema } from "../schemas/common.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });

/** The chain a caller may read: its own tenant's; only the bootstrap key reads others (and `_system`). */
function chainOf(c: Context<AppEnv>, tenant: string | undefined): string {
  const caller = c.var.caller;
  const chain = tenant ?? caller.tenant;
  // Noted before the check, so a refused attempt on another tenant's log records which log it was.
  c.set("audit", { target: `audit log ${chain}` });
  if (!caller.allTenants && chain !== caller.tenant) throw new ApiError("not_found", `no audit log for tenant ${chain}`);
  return chain;
}

function presentRecord(r: AuditRecord) {
  return { seq: r.seq, at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, target: r.target, outcome: r.outcome, ip: r.ip, prevHash: r.prevHash, hash: r.hash };
}

export function auditRoutes(routes: Routes): void {
  routes.add(
    {
      method: "get",
      path: "/v1/audit",
      summary: "Page through a tenant's audit log, oldest first",
      tag: "Tenants, keys, tokens, audit",
      audit: "audit.read",
      query: AuditQuery,
      responses: { 200: { description: "a page of records", schema: AuditPage }, 404: err("another tenant's log") },
    },
    async (c, { query }) => {
      const chain = chainOf(c, query.tenant);
      const page = await c.env.AUDIT.getByName(chain).list(query.limit, query.cursor === undefined ? null : Number(query.cursor));
      return c.json({ records: page.records.map(presentRecord), cursor: page.cursor === null ? null : String(page.cursor) });
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/audit/verify",
      summary: "Recompute a tenant's hash chain and report the first broken link",
      tag: "Tenants, keys, tokens, audit",
      audit: "audit.verify",
      query: AuditVerifyQuery,
      responses: { 200: { description: "the verdict", schema: AuditVerification }, 404: err("another tenant's log") },
    },
    async (c, { query }) => {
      const chain = chainOf(c, query.tenant);
      return c.json(await c.env.AUDIT.getByName(chain).verify());
    },
  );
}
