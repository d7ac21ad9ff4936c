import { z } from "zod";
import { TENANT_NAME } from "../../contract/ids.ts";
import { ROLES } from "../../contract/records.ts";
import { PoolName, queryIntIn, Timestamp, wellFormed } from "./common.ts";

export const TenantName = z.string().regex(TENANT_NAME, "a tenant name is 1-63 characters of a-z, 0-9, _ and -");
export const Role = z.enum(ROLES);

export const TenantParams = z.object({ tenant: TenantName });
export const KeyParams = z.object({ tenant: TenantName, id: z.string().regex(/^[A-Za-z0-9_-]{12}$/) });

export const CreateKey = z
  .strictObject({
    name: wellFormed(z.string().min(1).max(100)),
    roles: z
      .array(Role)
      .min(1)
      .max(ROLES.length)
      .refine((roles) => new Set(roles).size === roles.length, "roles must not repeat"),
    pool: PoolName.optional().describe("binds an agent key to one pool; required with the agent role, refused without it"),
  })
  .superRefine((key, ctx) => {
    const agent = key.roles.includes("agent");
    if (agent && key.pool === undefined) ctx.addIssue({ code: "custom", path: ["pool"], message: "an agent key must be bound to a pool" });
    if (!agent && key.pool !== undefined) ctx.addIssue({ code: "custom", path: ["pool"], message: "only agent keys are bound to a pool" });
  })
  // The same rule for generated clients and validating gateways: `pool` with the agent role, and only with it.
  .meta({
    if: { properties: { roles: { contains: { const: "agent" } } } },
    then: { properties: { pool: { type: "string" } }, required: ["pool"] },
    else: { not: { properties: { pool: { type: "string" } }, required: ["pool"] } },
  });

export const KeyInfo = z
  .object({
    id: z.string(),
    name: z.string(),
    roles: z.array(Role),
    tenant: z.string(),
    pool: z.string().nullable(),
    createdAt: Timestamp,
    revokedAt: Timestamp.nullable(),
  })
  .meta({ id: "ApiKey" });
export const CreatedKey = KeyInfo.omit({ revokedAt: true }).extend({ key: z.string().describe("shown only in this answer") });
export const KeysResponse = z.object({ keys: z.array(KeyInfo) });

export const TokenRequest = z.strictObject({ apiKey: z.string().min(1).max(512) });
export const TokenResponse = z.object({ token: z.string(), expiresAt: Timestamp, tenant: z.string(), roles: z.array(Role) });

export const AuditQuery = z.object({
  tenant: TenantName.or(z.literal("_system")).optional(),
  limit: queryIntIn(1, 1000).default(100),
  cursor: z.string().regex(/^[0-9]{1,15}$/, "a cursor this API returned").optional(),
});
export const AuditVerifyQuery = z.object({ tenant: TenantName.or(z.literal("_system")).optional() });
export const AuditRecordSchema = z
  .object({
    seq: z.number().int(),
    at: Timestamp,
    actor: z.string(),
    action: z.string(),
    target: z.string(),
    outcome: z.string(),
    ip: z.string().nullable(),
    prevHash: z.string(),
    hash: z.string(),
  })
  .meta({ id: "AuditRecord" });
export const AuditPage = z.object({ records: z.array(AuditRecordSchema), cursor: z.string().nullable() });
export const AuditVerification = z.union([z.object({ ok: z.literal(true), records: z.number().int() }), z.object({ ok: z.literal(false), brokenAt: z.number().int() })]);
