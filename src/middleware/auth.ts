import type { MiddlewareHandler } from "hono";
import type { AppEnv, Caller } from "../env";
import { ApiError } from "../shared/errors";

const encoder = new TextEncoder();

/** Compares two secrets in constant time: both are hashed first, so lengths leak nothing either. */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
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

const SUPER_ADMIN: Caller = { tenant: "default", allTenants: true, roles: ["admin"], credential: "admin_key" };

/** Every /v1 route needs a credential; today that is the bootstrap key `DAA_ADMIN_KEY`. */
export function requireAuth(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const credential = credentialOf(c.req.raw);
    if (credential === null) throw new ApiError("unauthorized", "send Authorization: Bearer <credential>");
    const adminKey = c.env.DAA_ADMIN_KEY;
    if (!adminKey) {
      console.error("DAA_ADMIN_KEY is not set: every request is refused (wrangler secret put DAA_ADMIN_KEY)");
      throw new ApiError("unauthorized", "the credential is not valid");
    }
    if (!(await secretsEqual(credential, adminKey))) throw new ApiError("unauthorized", "the credential is not valid");
    c.set("caller", SUPER_ADMIN);
    await next();
  };
}
