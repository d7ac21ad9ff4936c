import { recordAudit as append, type AuditEntry } from "../../lib/audit/records.ts";

/**
 * Appends one record to a tenant's audit chain (lib/audit/records.ts: the same path the coordinators' socket
 * traffic takes). The action already happened: if the log cannot be reached, the failure is logged and the
 * request still answers.
 */
export async function recordAudit(env: Env, tenant: string, entry: AuditEntry): Promise<void> {
  await append(env.AUDIT, tenant, [entry]);
}
