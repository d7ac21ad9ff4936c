import { Hono } from "hono";
import type { AppEnv } from "./env.ts";
import { onError, onNotFound } from "./middleware/errors.ts";
import { corsFromEnv, securityHeaders } from "./middleware/security-headers.ts";
import { Routes } from "./openapi/route.ts";
import { agentRoutes } from "./routes/agents.ts";
import { auditRoutes } from "./routes/audit.ts";
import { cacheRoutes } from "./routes/cache.ts";
import { authRoutes } from "./routes/auth.ts";
import { poolRoutes } from "./routes/pools.ts";
import { shardRoutes } from "./routes/shards.ts";
import { API_INFO, systemRoutes } from "./routes/system.ts";
import { openApiDocument } from "./openapi/document.ts";
import { taskRoutes } from "./routes/tasks.ts";
import { payloadRoutes } from "./routes/payloads.ts";
import { indexRoutes } from "./routes/indexes.ts";
import { workflowRoutes } from "./routes/workflows.ts";
import { scheduleRoutes } from "./routes/schedules.ts";
import { usageRoutes } from "./routes/usage.ts";

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
  declareRoutes(new Routes(app));
  return app;
}

function declareRoutes(routes: Routes): Routes {
  systemRoutes(routes);
  taskRoutes(routes);
  agentRoutes(routes);
  payloadRoutes(routes);
  poolRoutes(routes);
  shardRoutes(routes);
  authRoutes(routes);
  auditRoutes(routes);
  indexRoutes(routes);
  cacheRoutes(routes);
  workflowRoutes(routes);
  scheduleRoutes(routes);
  usageRoutes(routes);
  return routes;
}

/** The OpenAPI document as `GET /openapi.json` serves it from `serverUrl`, built without serving anything. */
export function apiDocument(serverUrl: string): Record<string, unknown> {
  return openApiDocument(declareRoutes(new Routes(new Hono<AppEnv>())).specs, API_INFO, serverUrl);
}
