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
