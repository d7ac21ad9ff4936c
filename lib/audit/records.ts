/**
 * What an audit record says about a batch, shared by the HTTP routes and the coordinators' socket traffic: one
 * record names the batch by its size and a SHA-256 over its ids (API.md), and every other tenant whose tasks the
 * batch touched gets a record naming only its own part.
 */
import { sha256Hex } from "../hash.ts";
import type { AuditEntry } from "./chain.ts";

export type { AuditEntry } from "./chain.ts";

/** The chain failed authentications go to (API.md): no tenant is known for them. */
export const SYSTEM_TENANT = "_system";

/** `<n> tasks sha256:<hex of the ids joined by newlines>`, optionally after a prefix (`agent-1 (websocket): `). */
export async function batchTarget(ids: readonly string[], prefix = ""): Promise<string> {
  return `${prefix}${ids.length} tasks sha256:${await sha256Hex(ids.join("\n"))}`;
}

/**
 * The ids of the tasks a batch touched, by their tenant, leaving out the actor's own tenant: the other tenants
 * whose auditors must also see the batch (a shared fleet serves several tenants). Items without a tenant (refused
 * ones) changed nothing and are left out too.
 */
export function idsOfOtherTenants(items: readonly ({ id: string; tenant: string } | { id: string })[], actorTenant: string): Map<string, string[]> {
  const byTenant = new Map<string, string[]>();
  for (const item of items) {
    if (!("tenant" in item) || item.tenant === actorTenant) continue;
    const ids = byTenant.get(item.tenant);
    if (ids) ids.push(item.id);
    else byTenant.set(item.tenant, [item.id]);
  }
  return byTenant;
}

/** Each other tenant a batch touched, with a target over its own ids. */
export async function batchSubjects(
  items: readonly ({ id: string; tenant: string } | { id: string })[],
  actorTenant: string,
  prefix = "",
): Promise<{ tenant: string; target: string }[]> {
  return Promise.all([...idsOfOtherTenants(items, actorTenant)].map(async ([tenant, ids]) => ({ tenant, target: await batchTarget(ids, prefix) })));
}

/** The audit logs, as whoever records sees them: one log per tenant, appended in order. */
export interface AuditLogs {
  getByName(tenant: string): { append(entries: AuditEntry[]): Promise<unknown> };
}

/**
 * Appends records to one tenant's chain in one transaction of its log. The action already happened: if the log
 * cannot be reached, the failure is logged loudly and the caller goes on, rather than hiding a done change.
 */
export async function recordAudit(logs: AuditLogs, tenant: string, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  try {
    await logs.getByName(tenant).append(entries);
  } catch (err) {
    console.error(`audit: could not append ${entries.length} record(s) (${entries[0]?.action}) for tenant ${tenant}`, err);
  }
}
