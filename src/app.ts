import { Hono } from "hono";
import type { AppEnv } from "./env";
import { onError, onNotFound } from "./middleware/errors";
import { corsFromEnv, securityHeaders } from "./middleware/security-headers";
import { Routes } from "./openapi/route";
import { agentRoutes } from "./routes/agents";
import { auditRoutes } from "./routes/audit";
import { authRoutes } from "./routes/auth";
import { poolRoutes } from "./routes/pools";
import { systemRoutes } from "./routes/system";
import { taskRoutes } from "./routes/tasks";

/**
 * The edge Worker: every route is declared once in a `Routes` table that authenticates, rate-limits, checks the
 * permission matrix, validates, audits and routes each request to the Durable Object that owns it.
 */
export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.notFound(onNotFound);
  app.use("*", securityHeaders());
  app.use("*", corsFromEnv());
  const routes = new Routes(app);
  systemRoutes(routes);
  taskRoutes(routes);
  agentRoutes(routes);
  poolRoutes(routes);
  authRoutes(routes);
  auditRoutes(routes);
  return app;
}
