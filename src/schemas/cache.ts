import { z } from "zod";
import { TenantName } from "./auth.ts";
import { TaskType } from "./tasks.ts";

export const CacheKeyParams = z.object({ key: z.string().regex(/^[a-z0-9_-]{1,63}\.[0-9a-f]{64}$/, "a cache key is <tenant>.<64 hex digits>") });

export const CacheEntryResponse = z
  .object({
    key: z.string(),
    level: z.enum(["l1", "l2", "l3"]).describe("the nearest level that held it for this request"),
    type: z.string(),
    cacheVersion: z.string(),
    sourceTaskId: z.string(),
    result: z.unknown(),
    tags: z.array(z.string()),
    createdAt: z.string(),
    expiresAt: z.string(),
  })
  .meta({ id: "CacheEntry" });

const Tag = z.string().min(1).max(64);
export const CachePurgeBody = z.union([
  z.strictObject({ tags: z.array(Tag).min(1).max(100), tenant: TenantName.optional().describe("the bootstrap key only: whose entries (default its own tenant)") }),
  z.strictObject({ type: TaskType, cacheVersion: z.string().max(128).optional(), tenant: TenantName.optional().describe("the bootstrap key only: whose entries") }),
]);
export const CachePurgeResponse = z.object({ purged: z.number().int().describe("entries removed from every level") });
