import type { AuditEntry } from "../../durable-objects/audit-log/chain";

/** The chain failed authentications go to (API.md): no tenant is known for them. */
export const SYSTEM_TENANT = "_system";

/**
 * Appends one record to a tenant's audit chain. The action already happened; if the audit log cannot be
 * reached the failure is logged loudly and the request still answers, rather than hiding a done change.
 */
export async function recordAudit(env: Env, tenant: string, entry: AuditEntry): Promise<void> {
  await recordAuditBatch(env, tenant, [entry]);
}

/** Several records of one tenant in one append (one transaction of its log). */
export async function recordAuditBatch(env: Env, tenant: string, entries: AuditEntry[]): Promise<void> {
  try {
    await env.AUDIT.getByName(tenant).append(entries);
  } catch (err) {
    console.error(`audit: could not append ${entries.length} record(s) (${entries[0]?.action}) for tenant ${tenant}`, err);
  }
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
