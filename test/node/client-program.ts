// A small program over the typed client (agent/client: openapi-typescript's types of the document with their
// default options, and openapi-fetch) that calls every route of the OpenAPI document once. It must type-check
// (`npm run typecheck` compiles it) and it runs against a real mesh in test/node/client.test.ts, which also
// checks that it names every route of the document.
import { ok, type MeshApi, type Schemas } from "../../agent/client/index.ts";

/** The status each step of the program expects: 201 for what it creates; the connect route refuses a request without Upgrade (400). */
const CREATED = new Set(["POST /v1/tasks", "POST /v1/tasks/batch", "POST /v1/tenants/:tenant/keys", "POST /v1/pools/:pool/agents", "POST /v1/pools/:pool/shards", "PUT /v1/indexes/:index", "POST /v1/workflows", "POST /v1/schedules"]);
/** A running workflow: its result is not final yet (202), and its steps have not failed, so none can be retried (409). */
const OTHER: Record<string, number> = { "GET /v1/workflows/:id/result": 202, "POST /v1/workflows/:id/steps/:key/retry": 409 };
export function expectedStatus(route: string): number {
  return OTHER[route] ?? (CREATED.has(route) ? 201 : route.endsWith("/connect") ? 400 : 200);
}

export interface Step {
  route: string;
  status: number;
}

/** Calls every route once, in an order that gives each call real data; answers each route with its status. */
export async function everyRoute(api: MeshApi, { pool, tenant }: { pool: string; tenant: string }): Promise<Step[]> {
  const steps: Step[] = [];
  const step = async <T extends { response: Response }>(route: string, call: Promise<T>): Promise<T> => {
    const answer = await call;
    steps.push({ route, status: answer.response.status });
    return answer;
  };

  await step("GET /healthz", api.GET("/healthz"));
  await step("GET /openapi.json", api.GET("/openapi.json"));
  await step("GET /", api.GET("/", { parseAs: "text" }));
  await step("GET /dashboard.js", api.GET("/dashboard.js", { parseAs: "text" }));

  const key = await ok(step("POST /v1/tenants/:tenant/keys", api.POST("/v1/tenants/{tenant}/keys", { params: { path: { tenant } }, body: { name: "program", roles: ["client"] } })));
  await step("GET /v1/tenants/:tenant/keys", api.GET("/v1/tenants/{tenant}/keys", { params: { path: { tenant } } }));
  await step("GET /v1/tenants/:tenant/usage", api.GET("/v1/tenants/{tenant}/usage", { params: { path: { tenant }, query: { from: "2026-01-01T00:00:00Z", to: String(Date.now()) } } }));
  await step("POST /v1/auth/token", api.POST("/v1/auth/token", { body: { apiKey: key.key } }));
  await step("DELETE /v1/tenants/:tenant/keys/:id", api.DELETE("/v1/tenants/{tenant}/keys/{id}", { params: { path: { tenant, id: key.id } } }));

  // A plain submit is just a type and a payload: every other field has a default.
  const first: Schemas["Task"] = await ok(step("POST /v1/tasks", api.POST("/v1/tasks", { body: { type: `${pool}.work`, payload: { n: 1 } } })));
  await ok(step("POST /v1/tasks/batch", api.POST("/v1/tasks/batch", { body: { tasks: [{ type: `${pool}.work` }, { type: `${pool}.work`, priority: 1 }] } })));
  await step("GET /v1/tasks/:id", api.GET("/v1/tasks/{id}", { params: { path: { id: first.id } } }));

  const agentId = "program-agent";
  const agent = { params: { path: { pool, agentId } } };
  await step("POST /v1/pools/:pool/agents", api.POST("/v1/pools/{pool}/agents", { params: { path: { pool } }, body: { agentId, maxConcurrency: 5 } }));
  await step("GET /v1/pools/:pool/agents", api.GET("/v1/pools/{pool}/agents", { params: { path: { pool } } }));
  await step("GET /v1/pools/:pool/agents/:agentId", api.GET("/v1/pools/{pool}/agents/{agentId}", agent));
  await step("POST /v1/pools/:pool/agents/:agentId/heartbeat", api.POST("/v1/pools/{pool}/agents/{agentId}/heartbeat", { ...agent, body: { load: { currentLoad: 0.1 } } }));
  const { tasks } = await ok(step("POST /v1/pools/:pool/agents/:agentId/lease", api.POST("/v1/pools/{pool}/agents/{agentId}/lease", { ...agent, body: { max: 3 } })));
  const [a, b, c] = tasks as [Schemas["LeasedTask"], Schemas["LeasedTask"], Schemas["LeasedTask"]];
  const task = (t: Schemas["LeasedTask"]) => ({ params: { path: { id: t.id } } });
  await step("GET /v1/tasks/:id/payload", api.GET("/v1/tasks/{id}/payload", { params: { path: { id: a.id }, query: { leaseToken: a.leaseToken } } }));
  await step("POST /v1/tasks/:id/extend", api.POST("/v1/tasks/{id}/extend", { ...task(a), body: { leaseToken: a.leaseToken, extendMs: 60_000 } }));
  await step("POST /v1/tasks/:id/complete", api.POST("/v1/tasks/{id}/complete", { ...task(a), body: { leaseToken: a.leaseToken, result: { done: true } } }));
  await step("POST /v1/tasks/:id/fail", api.POST("/v1/tasks/{id}/fail", { ...task(b), body: { leaseToken: b.leaseToken, error: { message: "no" }, retryable: false } }));
  await step("POST /v1/tasks/settle", api.POST("/v1/tasks/settle", { body: { items: [{ action: "complete", id: c.id, leaseToken: c.leaseToken, result: 3 }] } }));
  await step("GET /v1/tasks/:id/result", api.GET("/v1/tasks/{id}/result", { params: { path: { id: a.id }, query: { waitMs: 100 } } }));
  const extra = await ok(api.POST("/v1/tasks", { body: { type: `${pool}.work` } }));
  await step("POST /v1/tasks/:id/cancel", api.POST("/v1/tasks/{id}/cancel", { params: { path: { id: extra.id } } }));

  // The output cache: a cacheable task runs once; its repeat is answered from the cache with the entry's key.
  const cacheable = { type: `${pool}.work`, payload: { cached: 1 }, cache: true, cacheTags: ["program"] };
  await ok(api.POST("/v1/tasks", { body: cacheable }));
  const [run] = (await ok(api.POST("/v1/pools/{pool}/agents/{agentId}/lease", { ...agent, body: { max: 1 } }))).tasks as Schemas["LeasedTask"][];
  if (run) await ok(api.POST("/v1/tasks/{id}/complete", { ...task(run), body: { leaseToken: run.leaseToken, result: "cached" } }));
  let cacheKey = "";
  for (let i = 0; i < 100 && !cacheKey; i++) {
    const again = await ok(api.POST("/v1/tasks", { body: cacheable }));
    if (again.cache) cacheKey = again.cache.key;
    else await new Promise((r) => setTimeout(r, 20));
  }
  await step("GET /v1/cache/:key", api.GET("/v1/cache/{key}", { params: { path: { key: cacheKey } } }));
  await step("POST /v1/cache/purge", api.POST("/v1/cache/purge", { body: { tags: ["program"] } }));
  await step("DELETE /v1/cache/:key", api.DELETE("/v1/cache/{key}", { params: { path: { key: cacheKey } } }));

  await step("GET /v1/pools", api.GET("/v1/pools"));
  await step("GET /v1/pools/:pool", api.GET("/v1/pools/{pool}", { params: { path: { pool } } }));
  await step("GET /v1/pools/:pool/tasks", api.GET("/v1/pools/{pool}/tasks", { params: { path: { pool }, query: { status: "dead", limit: 10 } } }));
  await step("POST /v1/pools/:pool/dlq/redrive", api.POST("/v1/pools/{pool}/dlq/redrive", { params: { path: { pool } }, body: {} }));
  await step("GET /v1/pools/:pool/config", api.GET("/v1/pools/{pool}/config", { params: { path: { pool } } }));
  await step("PUT /v1/pools/:pool/config", api.PUT("/v1/pools/{pool}/config", { params: { path: { pool } }, body: { heartbeatIntervalMs: 6000 } }));
  const values = { params: { path: { pool, tenant: "default" } } };
  await step("GET /v1/pools/:pool/tenants/:tenant", api.GET("/v1/pools/{pool}/tenants/{tenant}", values));
  await step("PUT /v1/pools/:pool/tenants/:tenant", api.PUT("/v1/pools/{pool}/tenants/{tenant}", { ...values, body: { weight: 2 } }));

  const shard = await ok(step("POST /v1/pools/:pool/shards", api.POST("/v1/pools/{pool}/shards", { params: { path: { pool } }, body: { region: "weur" } })));
  await step("GET /v1/pools/:pool/shards", api.GET("/v1/pools/{pool}/shards", { params: { path: { pool } } }));
  await step("GET /v1/pools/:pool/state", api.GET("/v1/pools/{pool}/state", { params: { path: { pool } } }));
  await step("POST /v1/pools/:pool/shards/:id/drain", api.POST("/v1/pools/{pool}/shards/{id}/drain", { params: { path: { pool, id: shard.id } } }));

  await step("PATCH /v1/pools/:pool/agents/:agentId", api.PATCH("/v1/pools/{pool}/agents/{agentId}", { ...agent, body: { state: "paused" } }));
  // Without an Upgrade header the connect route refuses (400): a WebSocket client opens it.
  await step("GET /v1/pools/:pool/agents/:agentId/connect", api.GET("/v1/pools/{pool}/agents/{agentId}/connect", agent));
  await step("DELETE /v1/pools/:pool/agents/:agentId", api.DELETE("/v1/pools/{pool}/agents/{agentId}", agent));

  const index = { params: { path: { index: `${pool}-index` } } };
  await step("PUT /v1/indexes/:index", api.PUT("/v1/indexes/{index}", { ...index, body: { dimensions: 3, precision: "int8" } }));
  await step("POST /v1/indexes/:index/vectors", api.POST("/v1/indexes/{index}/vectors", { ...index, body: { vectors: [{ id: "a", values: [1, 0, 0], metadata: { kind: "x" } }, { id: "b", values: [0, 1, 0] }] } }));
  await step("GET /v1/indexes", api.GET("/v1/indexes"));
  const near: Schemas["VectorMatch"][] = (await ok(step("POST /v1/indexes/:index/query", api.POST("/v1/indexes/{index}/query", { ...index, body: { vector: [1, 0.1, 0], topK: 2, filter: { kind: { $eq: "x" } } } })))).matches;
  await step("DELETE /v1/indexes/:index/vectors/:id", api.DELETE("/v1/indexes/{index}/vectors/{id}", { params: { path: { index: `${pool}-index`, id: near[0]?.id ?? "a" } } }));
  await step("DELETE /v1/indexes/:index", api.DELETE("/v1/indexes/{index}", index));

  const workflow = await ok(step("POST /v1/workflows", api.POST("/v1/workflows", { body: { name: "program", steps: [{ key: "first", type: `${pool}.wf` }, { key: "second", type: `${pool}.wf`, dependsOn: ["first"] }] } })));
  const wf = { params: { path: { id: workflow.id } } };
  await step("GET /v1/workflows", api.GET("/v1/workflows", { params: { query: { status: "running", limit: 5 } } }));
  await step("GET /v1/workflows/:id", api.GET("/v1/workflows/{id}", wf));
  await step("GET /v1/workflows/:id/result", api.GET("/v1/workflows/{id}/result", { params: { path: { id: workflow.id }, query: { waitMs: 0 } } }));
  await step("POST /v1/workflows/:id/steps/:key/retry", api.POST("/v1/workflows/{id}/steps/{key}/retry", { params: { path: { id: workflow.id, key: "second" } } }));
  await step("POST /v1/workflows/:id/cancel", api.POST("/v1/workflows/{id}/cancel", wf));

  const schedule = await ok(step("POST /v1/schedules", api.POST("/v1/schedules", { body: { name: "program", cron: "0 3 * * *", timezone: "Europe/Paris", task: { type: `${pool}.nightly` } } })));
  const sch = { params: { path: { id: schedule.id } } };
  await step("GET /v1/schedules", api.GET("/v1/schedules", { params: { query: { limit: 5 } } }));
  await step("GET /v1/schedules/:id", api.GET("/v1/schedules/{id}", sch));
  await step("POST /v1/schedules/:id/pause", api.POST("/v1/schedules/{id}/pause", sch));
  await step("POST /v1/schedules/:id/resume", api.POST("/v1/schedules/{id}/resume", sch));
  await step("POST /v1/schedules/:id/trigger", api.POST("/v1/schedules/{id}/trigger", sch));
  await step("DELETE /v1/schedules/:id", api.DELETE("/v1/schedules/{id}", sch));

  await step("GET /v1/audit", api.GET("/v1/audit", { params: { query: { limit: 5 } } }));
  await step("GET /v1/audit/verify", api.GET("/v1/audit/verify"));
  await step("GET /metrics", api.GET("/metrics", { parseAs: "text" }));
  return steps;
}
