import { Hono } from "hono";
import type { AppEnv } from "./env";
import { requireAuth } from "./middleware/auth";
import { onError, onNotFound } from "./middleware/errors";
import { Routes } from "./openapi/route";
import { agentRoutes } from "./routes/agents";
import { poolRoutes } from "./routes/pools";
import { systemRoutes } from "./routes/system";
import { taskRoutes } from "./routes/tasks";

/** The edge Worker: validates, authenticates and routes each request to the coordinator that owns it. */
export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(onError);
  app.notFound(onNotFound);
  app.use("/v1/*", requireAuth());
  app.use("/metrics", requireAuth());
  const routes = new Routes(app);
  systemRoutes(routes);
  taskRoutes(routes);
  agentRoutes(routes);
  poolRoutes(routes);
  return app;
}
