import { describe, expect, it } from "vitest";
import { api, expectError, freshPool, lease, register, submit } from "../helpers";

describe("system routes", () => {
  it("/healthz answers without a credential", async () => {
    const res = await api("GET", "/healthz", undefined, { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true });
  });

  it("unknown routes and wrong methods answer 404 in the error shape", async () => {
    expectError(await api("GET", "/nope", undefined, { token: null }), 404, "not_found");
    expectError(await api("GET", "/v1/nope"), 404, "not_found");
    expectError(await api("DELETE", "/v1/tasks"), 404, "not_found");
  });

  it("the dashboard is served at /", async () => {
    const res = await api("GET", "/", undefined, { token: null });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.body).toContain('<script src="/dashboard.js"></script>');
    const js = await api("GET", "/dashboard.js", undefined, { token: null });
    expect(js.status).toBe(200);
    expect(js.body).toContain("/v1/pools");
  });
});

describe("/openapi.json", () => {
  it("is an OpenAPI 3.1 document with every route of the contract", async () => {
    const res = await api("GET", "/openapi.json", undefined, { token: null });
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe("3.1.0");
    const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        "POST /v1/tasks",
        "POST /v1/tasks/batch",
        "GET /v1/tasks/{id}",
        "GET /v1/tasks/{id}/result",
        "POST /v1/tasks/{id}/cancel",
        "POST /v1/tasks/{id}/complete",
        "POST /v1/tasks/{id}/fail",
        "POST /v1/tasks/{id}/extend",
        "POST /v1/tasks/settle",
        "GET /v1/tasks/{id}/payload",
        "POST /v1/pools/{pool}/agents",
        "GET /v1/pools/{pool}/agents",
        "GET /v1/pools/{pool}/agents/{agentId}",
        "PATCH /v1/pools/{pool}/agents/{agentId}",
        "DELETE /v1/pools/{pool}/agents/{agentId}",
        "POST /v1/pools/{pool}/agents/{agentId}/heartbeat",
        "POST /v1/pools/{pool}/agents/{agentId}/lease",
        "GET /v1/pools/{pool}/agents/{agentId}/connect",
        "GET /v1/pools",
        "GET /v1/pools/{pool}",
        "GET /v1/pools/{pool}/tasks",
        "POST /v1/pools/{pool}/dlq/redrive",
        "GET /v1/pools/{pool}/config",
        "PUT /v1/pools/{pool}/config",
        "GET /v1/pools/{pool}/tenants/{tenant}",
        "PUT /v1/pools/{pool}/tenants/{tenant}",
        "GET /v1/pools/{pool}/shards",
        "POST /v1/pools/{pool}/shards",
        "POST /v1/pools/{pool}/shards/{id}/drain",
        "GET /v1/pools/{pool}/state",
        "GET /healthz",
        "GET /metrics",
        "GET /openapi.json",
        "GET /",
        "GET /dashboard.js",
        "POST /v1/tenants/{tenant}/keys",
        "GET /v1/tenants/{tenant}/keys",
        "DELETE /v1/tenants/{tenant}/keys/{id}",
        "POST /v1/auth/token",
        "GET /v1/audit",
        "GET /v1/audit/verify",
        "GET /v1/cache/{key}",
        "DELETE /v1/cache/{key}",
        "POST /v1/cache/purge",
        "GET /v1/indexes",
        "PUT /v1/indexes/{index}",
        "DELETE /v1/indexes/{index}",
        "POST /v1/indexes/{index}/vectors",
        "DELETE /v1/indexes/{index}/vectors/{id}",
        "POST /v1/indexes/{index}/query",
        "POST /v1/workflows",
        "GET /v1/workflows",
        "GET /v1/workflows/{id}",
        "GET /v1/workflows/{id}/result",
        "POST /v1/workflows/{id}/cancel",
        "POST /v1/workflows/{id}/steps/{key}/retry",
        "POST /v1/schedules",
        "GET /v1/schedules",
        "GET /v1/schedules/{id}",
        "POST /v1/schedules/{id}/pause",
        "POST /v1/schedules/{id}/resume",
        "POST /v1/schedules/{id}/trigger",
        "DELETE /v1/schedules/{id}",
        "GET /v1/tenants/{tenant}/usage",
      ].sort(),
    );
  });

  it("describes request bodies from the same zod schemas that validate them", async () => {
    const doc = (await api("GET", "/openapi.json", undefined, { token: null })).body;
    const submitSchema = doc.paths["/v1/tasks"].post.requestBody.content["application/json"].schema;
    const resolved = submitSchema.$ref ? doc.components.schemas[submitSchema.$ref.split("/").pop()] : submitSchema;
    expect(resolved.required).toEqual(["type"]);
    // Request schemas state their defaults in words: generators make a field with a `default` required.
    expect(resolved.properties.priority).toMatchObject({ minimum: 0, maximum: 9 });
    expect(resolved.properties.priority.default).toBeUndefined();
    expect(resolved.properties.priority.description).toContain("Default: 5.");
    expect(resolved.additionalProperties).toBe(false);
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
    for (const ref of refs) {
      const [, kind, name] = /"#\/components\/(\w+)\/([^"]+)"$/.exec(ref.slice(7)) ?? [];
      expect(kind && name ? doc.components[kind]?.[name] : undefined, ref).toBeDefined();
    }
    expect(doc.paths["/v1/tasks/{id}"].get.parameters[0]).toMatchObject({ name: "id", in: "path", required: true });
    expect(doc.paths["/v1/pools/{pool}/tasks"].get.parameters.map((p: any) => p.name)).toEqual(["pool", "status", "limit", "cursor"]);
  });
});

describe("/metrics", () => {
  it("needs a credential", async () => {
    expectError(await api("GET", "/metrics", undefined, { token: null }), 401, "unauthorized");
  });

  it("exposes task counts by status, counters and the duration histogram in Prometheus text format", async () => {
    const pool = freshPool();
    const t = await submit(pool);
    await submit(pool);
    await register(pool, "a1");
    const [l] = await lease(pool, "a1");
    await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken });
    const res = await api("GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text: string = res.body;
    expect(text).toContain(`daa_tasks{pool="${pool}",status="queued"} 1`);
    expect(text).toContain(`daa_tasks{pool="${pool}",status="succeeded"} 1`);
    expect(text).toContain(`daa_tasks_submitted_total{pool="${pool}"} 2`);
    expect(text).toContain(`daa_tasks_leased_total{pool="${pool}"} 1`);
    expect(text).toContain(`daa_tasks_succeeded_total{pool="${pool}"} 1`);
    expect(text).toContain(`daa_task_duration_seconds_count{pool="${pool}"} 1`);
    expect(text).toContain(`daa_task_duration_seconds_bucket{pool="${pool}",le="+Inf"} 1`);
    expect(text).toContain(`daa_agents{pool="${pool}",state="running"} 1`);
    for (const line of text.trimEnd().split("\n")) {
      expect(line).toMatch(/^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+|[a-z_]+\{.*\} \+Inf)$/);
    }
    for (const m of text.matchAll(/^# TYPE (\S+) counter$/gm)) expect(m[1]).toMatch(/_total$/);
  });
});
