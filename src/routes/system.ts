import { z } from "zod";
import { DASHBOARD_HTML, DASHBOARD_JS } from "../dashboard.ts";
import { Gateway } from "../mesh/gateway.ts";
import { renderMetrics } from "../metrics.ts";
import { openApiDocument } from "../openapi/document.ts";
import type { Routes } from "../openapi/route.ts";

export const API_INFO = {
  title: "DAA Mesh API",
  version: "1.0.0",
  description:
    "Task queue and agent coordination at the edge. Every /v1 route but POST /v1/auth/token needs Authorization: Bearer <credential>. Errors have the shape of the Error schema; the reference is docs/api.md.",
  license: { name: "Apache-2.0", identifier: "Apache-2.0" },
};

export function systemRoutes(routes: Routes): void {
  routes.add(
    { method: "get", path: "/healthz", summary: "Liveness", tag: "System", responses: { 200: { description: "alive", schema: z.object({ ok: z.literal(true) }) } } },
    (c) => c.json({ ok: true }),
  );

  routes.add(
    {
      method: "get",
      path: "/metrics",
      summary: "Prometheus metrics of every pool",
      tag: "System",
      responses: { 200: { description: "Prometheus text exposition 0.0.4", contentType: "text/plain; version=0.0.4" } },
    },
    async (c) => {
      const caller = c.var.caller;
      const gateway = new Gateway(c.env, c.req.raw);
      const pools = await gateway.placement.directory().list(caller.allTenants ? null : caller.tenant);
      const metrics = await Promise.all(pools.map(({ pool }) => gateway.pools.metrics(caller, pool)));
      return c.body(renderMetrics(metrics), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    },
  );

  routes.add(
    {
      method: "get",
      path: "/openapi.json",
      summary: "This document",
      tag: "System",
     
      responses: { 200: { description: "OpenAPI 3.1", schema: z.record(z.string(), z.unknown()) } },
    },
    (c) => c.json(openApiDocument(routes.specs, API_INFO, new URL(c.req.url).origin)),
  );

  routes.add(
    { method: "get", path: "/", summary: "The dashboard", tag: "System", responses: { 200: { description: "HTML", contentType: "text/html" } } },
    (c) => c.html(DASHBOARD_HTML),
  );

  routes.add(
    { method: "get", path: "/dashboard.js", summary: "The dashboard's script", tag: "System", responses: { 200: { description: "JavaScript", contentType: "text/javascript" } } },
    (c) => c.body(DASHBOARD_JS, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache" }),
  );
}
