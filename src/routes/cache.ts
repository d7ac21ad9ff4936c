import { ApiError } from "../../contract/errors.ts";
import { DEFAULT_CACHE_CONFIG, parseCacheKey, type CachePurge } from "../../contract/cache.ts";
import type { Caller } from "../env.ts";
import { outputCache } from "../mesh/cache/context.ts";
import type { Routes } from "../openapi/route.ts";
import { CacheEntryResponse, CacheKeyParams, CachePurgeBody, CachePurgeResponse } from "../schemas/cache.ts";
import { ErrorSchema } from "../schemas/common.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });

/** The tenant of an entry's key, if the caller may see it (others: 404, as for a missing entry). */
function tenantOfKey(caller: Caller, key: string): string {
  const tenant = parseCacheKey(key)!.tenant;
  if (!caller.allTenants && caller.tenant !== tenant) throw new ApiError("not_found", `no cache entry ${key}`);
  return tenant;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function cacheRoutes(routes: Routes): void {
  routes.add(
    {
      method: "get",
      path: "/v1/cache/:key",
      summary: "A cached output: its result, tags, lifetime, and the nearest level that holds it",
      tag: "Cache",
      params: CacheKeyParams,
      responses: { 200: { description: "the entry", schema: CacheEntryResponse }, 404: err("no such entry (or another tenant's)") },
    },
    async (c, { params }) => {
      tenantOfKey(c.var.caller, params.key);
      const cache = outputCache(c);
      const now = Date.now();
      const indexed = await cache.indexed(params.key, now);
      // The entry's pool is not in its key: levels above the hit are filled with the default TTLs.
      const hit = indexed ? await cache.lookup(params.key, DEFAULT_CACHE_CONFIG.ttlMs, now) : null;
      if (!indexed || !hit) throw new ApiError("not_found", `no cache entry ${params.key}`);
      const { task } = hit.entry;
      return c.json({
        key: params.key,
        level: hit.level,
        type: indexed.type,
        cacheVersion: indexed.version,
        sourceTaskId: indexed.sourceTaskId,
        result: task.result === null ? null : (JSON.parse(task.result) as unknown),
        tags: indexed.tags,
        createdAt: iso(indexed.createdAt),
        expiresAt: iso(indexed.expiresAt),
      });
    },
  );

  routes.add(
    {
      method: "delete",
      path: "/v1/cache/:key",
      summary: "Remove a cached output from every level",
      tag: "Cache",
      audit: "cache.delete",
      params: CacheKeyParams,
      responses: { 200: { description: "gone from every level (purged: 1), or there was nothing (purged: 0)", schema: CachePurgeResponse }, 404: err("another tenant's key") },
    },
    async (c, { params }) => {
      const tenant = tenantOfKey(c.var.caller, params.key);
      c.set("audit", { target: params.key, tenant });
      return c.json({ purged: await outputCache(c).purge(tenant, { keys: [params.key] }) });
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/cache/purge",
      summary: "Remove the cached outputs with any of these tags, or of a type (and cacheVersion), from every level",
      tag: "Cache",
      audit: "cache.purge",
      body: CachePurgeBody,
      responses: { 200: { description: "how many entries went", schema: CachePurgeResponse }, 403: err("tenant named by a key that is not the bootstrap key") },
    },
    async (c, { body }) => {
      const caller = c.var.caller;
      if (body.tenant !== undefined && body.tenant !== caller.tenant && !caller.allTenants) throw new ApiError("forbidden", "only the bootstrap key may purge another tenant's cache");
      const tenant = body.tenant ?? caller.tenant;
      const what: CachePurge = "tags" in body ? { tags: body.tags } : { type: body.type, ...(body.cacheVersion !== undefined ? { cacheVersion: body.cacheVersion } : {}) };
      const target = "tags" in what ? `tags ${what.tags.join(", ")}` : `type ${what.type}${what.cacheVersion !== undefined ? ` version "${what.cacheVersion}"` : ""}`;
      c.set("audit", { target, tenant });
      return c.json({ purged: await outputCache(c).purge(tenant, what) });
    },
  );
}
