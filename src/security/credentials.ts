import type { Context } from "hono";
import { ApiError } from "../../contract/errors.ts";
import type { Principal, Role } from "../../contract/records.ts";
import { sha256Hex } from "../../lib/hash.ts";
import { base64url } from "../../lib/random.ts";
import { keyringFromEnv } from "../../lib/security/keyring.ts";
import { looksLikeJwt, verifyToken } from "../../lib/security/tokens.ts";
import type { AppEnv, Caller } from "../env.ts";

export { isTenantName } from "../../contract/ids.ts";

const encoder = new TextEncoder();
const API_KEY = /^daa\.([a-z0-9][a-z0-9_-]{0,62})\.([A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{43})$/;

/** A new API key: `daa.<tenant>.<id>.<secret>`; the id routes a lookup to the tenant's key store. */
export function newApiKey(tenant: string): { id: string; key: string } {
  const id = base64url(crypto.getRandomValues(new Uint8Array(9)));
  const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
  return { id, key: `daa.${tenant}.${id}.${secret}` };
}

export function parseApiKey(key: string): { tenant: string; id: string } | null {
  const m = API_KEY.exec(key);
  return m ? { tenant: m[1]!, id: m[2]! } : null;
}

/** What is stored of a key: its SHA-256 (a 256-bit random secret needs no slow hash). */
export async function hashKey(key: string): Promise<string> {
  return sha256Hex(key);
}

/** Compares two secrets in constant time: both are hashed first, so lengths leak nothing either. */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([crypto.subtle.digest("SHA-256", encoder.encode(a)), crypto.subtle.digest("SHA-256", encoder.encode(b))]);
  return crypto.subtle.timingSafeEqual(ha, hb);
}

/** The credential of a request: the bearer token, or `?token=` on a WebSocket upgrade that cannot set headers. */
export function credentialOf(req: Request): string | null {
  const header = req.headers.get("authorization");
  if (header !== null) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? m[1]! : null;
  }
  if (req.headers.get("upgrade")?.toLowerCase() === "websocket") return new URL(req.url).searchParams.get("token");
  return null;
}

/** Whether Cloudflare verified a client certificate on this connection (mTLS). */
export function clientCertVerified(req: Request): boolean {
  const auth = (req as Request & { cf?: { tlsClientAuth?: { certPresented?: string; certVerified?: string } } }).cf?.tlsClientAuth;
  return auth?.certPresented === "1" && auth.certVerified === "SUCCESS";
}

/** A caller from a credential's tenant and roles, with the attribute flags the coordinators check. */
export function callerOf(fields: {
  tenant: string;
  roles: readonly Role[];
  keyId: string;
  pool: string | null;
  credential: "api_key" | "token";
  certVerified: boolean;
  expiresAt?: number;
}): Caller {
  const { roles } = fields;
  const manages = roles.includes("admin") || roles.includes("operator");
  return {
    tenant: fields.tenant,
    allTenants: false,
    actor: fields.keyId,
    fleetOperator: roles.includes("operator"),
    agentOnly: !manages && roles.includes("agent"),
    certVerified: fields.certVerified,
    expiresAt: fields.expiresAt ?? null,
    roles,
    credential: fields.credential,
    keyId: fields.keyId,
    pool: fields.pool,
  };
}

export function superAdmin(certVerified: boolean): Caller {
  return {
    tenant: "default",
    allTenants: true,
    actor: "admin",
    fleetOperator: true,
    agentOnly: false,
    certVerified,
    roles: ["admin"],
    credential: "admin_key",
    keyId: null,
    pool: null,
  };
}

/** The attribute flags of a caller, as a coordinator takes them (plain data, for RPC and socket attachments). */
export function principalOf(caller: Caller): Principal {
  return {
    tenant: caller.tenant,
    allTenants: caller.allTenants,
    actor: caller.actor,
    fleetOperator: caller.fleetOperator,
    agentOnly: caller.agentOnly,
    certVerified: caller.certVerified,
    expiresAt: caller.expiresAt ?? null,
  };
}

/** The audit trail's name for a caller. */
export function actorName(caller: Caller): string {
  return caller.credential === "admin_key" ? "admin-key" : `${caller.credential === "token" ? "token" : "key"}:${caller.keyId}`;
}

/**
 * Who is calling: the bootstrap key, a JWT from /v1/auth/token (verified locally, no lookup), or an API key
 * (checked against its tenant's key store on every request, so a revocation applies at once).
 */
export async function authenticate(c: Context<AppEnv>): Promise<Caller> {
  const credential = credentialOf(c.req.raw);
  if (credential === null) throw new ApiError("unauthorized", "send Authorization: Bearer <credential>");
  const certVerified = clientCertVerified(c.req.raw);
  const adminKey = c.env.DAA_ADMIN_KEY;
  if (adminKey && (await secretsEqual(credential, adminKey))) return superAdmin(certVerified);
  if (!adminKey) console.error("DAA_ADMIN_KEY is not set (wrangler secret put DAA_ADMIN_KEY)");
  if (looksLikeJwt(credential)) {
    const claims = await verifyToken(keyringFromEnv(c.env), credential);
    return callerOf({ ...claims, roles: claims.roles as Role[], credential: "token", certVerified });
  }
  const parsed = parseApiKey(credential);
  if (!parsed) throw new ApiError("unauthorized", "the credential is not valid");
  const key = await c.env.KEYS.getByName(parsed.tenant).authenticate(parsed.id, await hashKey(credential));
  if (!key) throw new ApiError("unauthorized", "the credential is not valid or was revoked");
  return callerOf({ tenant: key.tenant, roles: key.roles, keyId: key.id, pool: key.pool, credential: "api_key", certVerified });
}

/** The key id a credential names, for the audit of a failed authentication (never the secret). */
export function claimedKeyId(req: Request): string | null {
  const credential = credentialOf(req);
  return credential ? (parseApiKey(credential)?.id ?? null) : null;
}
