import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "../env.ts";

/** Pages the Worker serves as HTML may load scripts from itself only; JSON answers may load nothing at all. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";
const PAGE_CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";

/** Security headers on every response, errors and 404s included. */
export function securityHeaders(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await next();
    // A WebSocket handshake answer carries no document; its headers belong to the upgrade.
    if (c.res.status === 101) return;
    const h = c.res.headers;
    const html = h.get("content-type")?.startsWith("text/html") ?? false;
    h.set("X-Content-Type-Options", "nosniff");
    h.set("X-Frame-Options", "DENY");
    h.set("Referrer-Policy", "no-referrer");
    h.set("Strict-Transport-Security", "max-age=31536000; includeSubDomains");
    h.set("Cross-Origin-Opener-Policy", "same-origin");
    h.set("Permissions-Policy", "camera=(), microphone=(), geolocation=()");
    h.set("Content-Security-Policy", html ? PAGE_CSP : API_CSP);
    if (!h.has("Cache-Control")) h.set("Cache-Control", "no-store");
  };
}

/** CORS for the origins listed in DAA_CORS_ORIGINS (comma-separated); with none listed, CORS stays off. */
export function corsFromEnv(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const origins = (c.env.DAA_CORS_ORIGINS ?? "")
      .split(",")
      .map((o) => o.trim())
      .filter((o) => o !== "");
    if (origins.length === 0) return next();
    return cors({
      origin: origins,
      allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      allowHeaders: ["Authorization", "Content-Type"],
      exposeHeaders: ["Retry-After"],
      maxAge: 600,
    })(c, next);
  };
}
