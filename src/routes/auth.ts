import type { Context } from "hono";
import type { AppEnv } from "../env.ts";
import type { Routes } from "../openapi/route.ts";
import { ErrorSchema } from "../schemas/common.ts";
import { CreatedKey, CreateKey, KeyParams, KeysResponse, TenantParams, TokenRequest, TokenResponse } from "../schemas/auth.ts";
import { ApiError } from "../../contract/errors.ts";
import type { KeyRecord } from "../../contract/records.ts";
import { SYSTEM_TENANT } from "../../lib/audit/records.ts";
import { keyringFromEnv } from "../../lib/security/keyring.ts";
import { issueToken } from "../../lib/security/tokens.ts";
import { Gateway } from "../mesh/gateway.ts";
import { recordAudit } from "../security/audit.ts";
import { hashKey, newApiKey, parseApiKey } from "../security/credentials.ts";
import { enforceRateLimits } from "../security/rate-limit.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Only the bootstrap key crosses tenants; an admin key manages its own tenant, and others look absent. */
function ownTenant(c: Context<AppEnv>, tenant: string): void {
  const caller = c.var.caller;
  if (!caller.allTenants && caller.tenant !== tenant) throw new ApiError("not_found", `no tenant ${tenant}`);
}

function presentKey(key: KeyRecord) {
  return { id: key.id, name: key.name, roles: key.roles, tenant: key.tenant, pool: key.pool, createdAt: iso(key.createdAt)!, revokedAt: iso(key.revokedAt) };
}

export function authRoutes(routes: Routes): void {
  routes.add(
    {
      method: "post",
      path: "/v1/tenants/:tenant/keys",
      summary: "Create an API key (the key is shown only in this answer)",
      tag: "Tenants, keys, tokens, audit",
      audit: "key.create",
      params: TenantParams,
      body: CreateKey,
      responses: { 201: { description: "the key", schema: CreatedKey }, 400: err("invalid key"), 403: err("an operator key asked for by other than the bootstrap key"), 404: err("another tenant") },
    },
    async (c, { params, body }) => {
      ownTenant(c, params.tenant);
      // An operator acts across tenants (the shared fleet, pool-wide configuration): only the bootstrap key makes one.
      if (body.roles.includes("operator") && !c.var.caller.allTenants) throw new ApiError("forbidden", "only the bootstrap key may create keys with the operator role");
      const { id, key } = newApiKey(params.tenant);
      const created = await c.env.KEYS.getByName(params.tenant).create({
        id,
        name: body.name,
        roles: body.roles,
        pool: body.pool ?? null,
        hash: await hashKey(key),
        now: Date.now(),
      });
      c.set("audit", { target: `key ${id} (${body.roles.join(",")})` });
      const { revokedAt: _revoked, ...shown } = presentKey(created);
      return c.json({ ...shown, key }, 201);
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/tenants/:tenant/keys",
      summary: "List a tenant's API keys (without secrets)",
      tag: "Tenants, keys, tokens, audit",
      audit: "key.list",
      params: TenantParams,
      responses: { 200: { description: "the keys", schema: KeysResponse }, 404: err("another tenant") },
    },
    async (c, { params }) => {
      ownTenant(c, params.tenant);
      return c.json({ keys: (await c.env.KEYS.getByName(params.tenant).list()).map(presentKey) });
    },
  );

  routes.add(
    {
      method: "delete",
      path: "/v1/tenants/:tenant/keys/:id",
      summary: "Revoke an API key: it stops working at once (tokens issued from it run out within their lifetime)",
      tag: "Tenants, keys, tokens, audit",
      audit: "key.revoke",
      params: KeyParams,
      responses: { 200: { description: "the revoked key", schema: KeysResponse.shape.keys.element }, 404: err("no such key") },
    },
    async (c, { params }) => {
      ownTenant(c, params.tenant);
      const revoked = await c.env.KEYS.getByName(params.tenant).revoke(params.id, Date.now());
      if (!revoked) throw new ApiError("not_found", `no key ${params.id} in tenant ${params.tenant}`);
      // Agent sockets opened with the key close too: in its pool, or in every pool its tenant uses (an agent
      // registers before it connects, and registering is a write that lists the tenant in the directory).
      const { calls, placement } = new Gateway(c.env, c.req.raw);
      const pools = revoked.pool !== null ? [revoked.pool] : (await placement.directory().list(revoked.tenant)).map((p) => p.pool);
      await Promise.all(pools.map((pool) => calls.everyShard(pool, (coordinator) => coordinator.closeSocketsOfKey(revoked.id))));
      return c.json(presentKey(revoked));
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/auth/token",
      summary: "Exchange an API key for a short-lived token (JWT, at most 15 minutes)",
      tag: "Tenants, keys, tokens, audit",
      body: TokenRequest,
      responses: { 200: { description: "the token", schema: TokenResponse }, 401: err("bad or revoked key"), 429: err("too many attempts") },
    },
    async (c, { body }) => {
      const ip = c.req.header("cf-connecting-ip") ?? null;
      await enforceRateLimits(c.env, { tenant: null, credential: `ip:${ip ?? "unknown"}` });
      const parsed = parseApiKey(body.apiKey);
      const key = parsed ? await c.env.KEYS.getByName(parsed.tenant).authenticate(parsed.id, await hashKey(body.apiKey)) : null;
      if (!key) {
        await recordAudit(c.env, SYSTEM_TENANT, {
          actor: parsed ? `key:${parsed.id}` : "anonymous",
          action: "token.issue",
          target: "POST /v1/auth/token",
          outcome: "unauthorized",
          ip,
          at: Date.now(),
        });
        throw new ApiError("unauthorized", "the API key is not valid or was revoked");
      }
      const ttl = Math.min(900, Math.max(1, Number(c.env.DAA_TOKEN_TTL_SECONDS) || 900));
      const { token, expiresAt } = await issueToken(keyringFromEnv(c.env), { keyId: key.id, tenant: key.tenant, roles: key.roles, pool: key.pool }, ttl);
      await recordAudit(c.env, key.tenant, { actor: `key:${key.id}`, action: "token.issue", target: `token for key ${key.id}`, outcome: "success", ip, at: Date.now() });
      return c.json({ token, expiresAt: new Date(expiresAt).toISOString(), tenant: key.tenant, roles: key.roles });
    },
  );
}
