// The Portman configuration of `npm run check:contract`: contract tests for every operation of the OpenAPI
// document (status, content type, JSON body, schema, headers), run by Newman against a live mesh. Portman makes
// one request per operation from the document's schemas; the overwrites and variables below give those requests
// real data (a task that exists, the lease token of a task leased a moment before), in an order that produces it.
const op = (method, path) => `${method}::${path}`;

/** The operations in the order they run; Portman runs folders (the document's tags) in `orderOfFolders`. */
export const ORDER = [
  op("POST", "/v1/tenants/{tenant}/keys"),
  op("GET", "/v1/tenants/{tenant}/keys"),
  op("POST", "/v1/auth/token"),
  op("DELETE", "/v1/tenants/{tenant}/keys/{id}"),
  op("GET", "/v1/audit"),
  op("GET", "/v1/audit/verify"),
  op("POST", "/v1/tasks"),
  op("POST", "/v1/tasks/batch"),
  op("GET", "/v1/tasks/{id}"),
  op("GET", "/v1/tasks/{id}/result"),
  op("POST", "/v1/tasks/{id}/cancel"),
  op("POST", "/v1/pools/{pool}/agents"),
  op("GET", "/v1/pools/{pool}/agents"),
  op("GET", "/v1/pools/{pool}/agents/{agentId}"),
  op("POST", "/v1/pools/{pool}/agents/{agentId}/heartbeat"),
  op("POST", "/v1/pools/{pool}/agents/{agentId}/lease"),
  op("GET", "/v1/tasks/{id}/payload"),
  op("POST", "/v1/tasks/{id}/extend"),
  op("POST", "/v1/tasks/{id}/complete"),
  op("POST", "/v1/tasks/{id}/fail"),
  op("POST", "/v1/tasks/settle"),
  op("GET", "/v1/pools/{pool}/agents/{agentId}/connect"),
  op("PATCH", "/v1/pools/{pool}/agents/{agentId}"),
  op("DELETE", "/v1/pools/{pool}/agents/{agentId}"),
  op("POST", "/v1/pools/{pool}/shards"),
  op("GET", "/v1/pools/{pool}/shards"),
  op("GET", "/v1/pools/{pool}/state"),
  op("POST", "/v1/pools/{pool}/shards/{id}/drain"),
  op("PUT", "/v1/indexes/{index}"),
  op("POST", "/v1/indexes/{index}/vectors"),
  op("GET", "/v1/indexes"),
  op("POST", "/v1/indexes/{index}/query"),
  op("DELETE", "/v1/indexes/{index}/vectors/{id}"),
  op("DELETE", "/v1/indexes/{index}"),
  op("GET", "/v1/cache/{key}"),
  op("POST", "/v1/cache/purge"),
  op("DELETE", "/v1/cache/{key}"),
  op("POST", "/v1/workflows"),
  op("GET", "/v1/workflows"),
  op("GET", "/v1/workflows/{id}"),
  op("GET", "/v1/workflows/{id}/result"),
  op("POST", "/v1/workflows/{id}/cancel"),
  op("POST", "/v1/workflows/{id}/steps/{key}/retry"),
];

const body = (operation, value) => ({ openApiOperation: operation, overwriteRequestBody: [{ key: ".", value, overwrite: true }] });
const path = (operation, vars) => ({ openApiOperation: operation, overwriteRequestPathVariables: Object.entries(vars).map(([key, value]) => ({ key, value, overwrite: true })) });
const query = (operation, vars) => ({ openApiOperation: operation, overwriteRequestQueryParams: Object.entries(vars).map(([key, value]) => (value === null ? { key, remove: true } : { key, value, overwrite: true })) });
const assign = (operation, vars) => ({ openApiOperation: operation, collectionVariables: Object.entries(vars).map(([name, responseBodyProp]) => ({ name, responseBodyProp })) });

export function portmanConfig({ pool, tenant }) {
  const agent = { pool, agentId: "contract-agent" };
  return {
    version: 1.0,
    tests: {
      contractTests: [
        { openApiOperation: "*::/*", excludeForOperations: [op("GET", "/v1/pools/{pool}/agents/{agentId}/connect"), op("GET", "/v1/cache/{key}"), op("POST", "/v1/workflows/{id}/steps/{key}/retry")], statusSuccess: { enabled: true } },
        { openApiOperation: "*::/*", contentType: { enabled: true } },
        { openApiOperation: "*::/*", jsonBody: { enabled: true } },
        // Portman 1.33 renames every object key `types` to `type` before it validates (testResponseJsonSchema.js,
        // convertUnsupportedJsonSchemaProperties, meant for openapi-to-postman's 3.1 keyword), which also renames
        // the *property* `cache.types` / `cache.semantic.types` of PoolConfig, so every correct answer fails there.
        // That one response's schema is checked by Prism instead (its validating proxy sees GET .../config).
        { openApiOperation: "*::/*", excludeForOperations: [op("GET", "/v1/pools/{pool}/config"), op("PUT", "/v1/pools/{pool}/config"), op("GET", "/v1/cache/{key}"), op("POST", "/v1/workflows/{id}/steps/{key}/retry")], schemaValidation: { enabled: true } },
        { openApiOperation: "*::/*", headersPresent: { enabled: true } },
        // The connect route opens a WebSocket; a plain request without Upgrade is refused as documented.
        { openApiOperation: op("GET", "/v1/pools/{pool}/agents/{agentId}/connect"), openApiResponse: "400", statusCode: { enabled: true, code: 400 } },
        // A cache key exists only after a cacheable task ran and was filled; a well-formed key of nothing is a 404.
        { openApiOperation: op("GET", "/v1/cache/{key}"), openApiResponse: "404", statusCode: { enabled: true, code: 404 }, schemaValidation: { enabled: true } },
        // Only a failed step can be retried; the run was cancelled a moment before, so the documented answer is 409.
        { openApiOperation: op("POST", "/v1/workflows/{id}/steps/{key}/retry"), openApiResponse: "409", statusCode: { enabled: true, code: 409 }, schemaValidation: { enabled: true } },
      ],
      contentTests: [],
      extendTests: [],
      variationTests: [],
    },
    assignVariables: [
      assign(op("POST", "/v1/tenants/{tenant}/keys"), { keyId: "id", apiKey: "key" }),
      assign(op("POST", "/v1/tasks"), { taskId: "id" }),
      assign(op("POST", "/v1/pools/{pool}/shards"), { shardId: "id" }),
      assign(op("POST", "/v1/workflows"), { workflowId: "id" }),
      assign(op("POST", "/v1/pools/{pool}/agents/{agentId}/lease"), { leased0: "tasks[0].id", token0: "tasks[0].leaseToken", leased1: "tasks[1].id", token1: "tasks[1].leaseToken", leased2: "tasks[2].id", token2: "tasks[2].leaseToken" }),
    ],
    overwrites: [
      path("*::/v1/tenants/{tenant}/keys", { tenant }),
      path(op("DELETE", "/v1/tenants/{tenant}/keys/{id}"), { tenant, id: "{{keyId}}" }),
      body(op("POST", "/v1/tenants/{tenant}/keys"), { name: "contract", roles: ["client"] }),
      body(op("POST", "/v1/auth/token"), { apiKey: "{{apiKey}}" }),
      query(op("GET", "/v1/audit"), { tenant: null, cursor: null, limit: "5" }),
      query(op("GET", "/v1/audit/verify"), { tenant: null }),
      body(op("POST", "/v1/tasks"), { type: `${pool}.work`, payload: { n: 1 } }),
      body(op("POST", "/v1/tasks/batch"), { tasks: [{ type: `${pool}.work` }, { type: `${pool}.work` }, { type: `${pool}.work` }] }),
      path(op("GET", "/v1/tasks/{id}"), { id: "{{taskId}}" }),
      path(op("GET", "/v1/tasks/{id}/result"), { id: "{{taskId}}" }),
      query(op("GET", "/v1/tasks/{id}/result"), { waitMs: "0" }),
      path(op("POST", "/v1/tasks/{id}/cancel"), { id: "{{taskId}}" }),
      path(op("POST", "/v1/pools/{pool}/agents"), { pool }),
      body(op("POST", "/v1/pools/{pool}/agents"), { agentId: agent.agentId, maxConcurrency: 5 }),
      path(op("GET", "/v1/pools/{pool}/agents"), { pool }),
      path("*::/v1/pools/{pool}/agents/{agentId}*", agent),
      body(op("POST", "/v1/pools/{pool}/agents/{agentId}/heartbeat"), { load: { currentLoad: 0.2, queueDepth: 0, avgLatencyMs: 10 } }),
      body(op("POST", "/v1/pools/{pool}/agents/{agentId}/lease"), { max: 3, waitMs: 0 }),
      path(op("GET", "/v1/tasks/{id}/payload"), { id: "{{leased0}}" }),
      query(op("GET", "/v1/tasks/{id}/payload"), { leaseToken: "{{token0}}" }),
      path(op("POST", "/v1/tasks/{id}/extend"), { id: "{{leased0}}" }),
      body(op("POST", "/v1/tasks/{id}/extend"), { leaseToken: "{{token0}}", extendMs: 60000 }),
      path(op("POST", "/v1/tasks/{id}/complete"), { id: "{{leased0}}" }),
      body(op("POST", "/v1/tasks/{id}/complete"), { leaseToken: "{{token0}}", result: { ok: true } }),
      path(op("POST", "/v1/tasks/{id}/fail"), { id: "{{leased1}}" }),
      body(op("POST", "/v1/tasks/{id}/fail"), { leaseToken: "{{token1}}", error: { message: "contract" }, retryable: false }),
      body(op("POST", "/v1/tasks/settle"), { items: [{ action: "complete", id: "{{leased2}}", leaseToken: "{{token2}}", result: 1 }] }),
      body(op("PATCH", "/v1/pools/{pool}/agents/{agentId}"), { state: "paused" }),
      path("*::/v1/pools/{pool}", { pool }),
      path("*::/v1/pools/{pool}/*", { pool }),
      query(op("GET", "/v1/pools/{pool}/tasks"), { status: "dead", limit: "10", cursor: null }),
      body(op("POST", "/v1/pools/{pool}/dlq/redrive"), {}),
      body(op("PUT", "/v1/pools/{pool}/config"), { heartbeatIntervalMs: 6000 }),
      path("*::/v1/pools/{pool}/tenants/{tenant}", { pool, tenant: "default" }),
      body(op("PUT", "/v1/pools/{pool}/tenants/{tenant}"), { weight: 2 }),
      body(op("POST", "/v1/pools/{pool}/shards"), { region: "weur" }),
      path(op("POST", "/v1/pools/{pool}/shards/{id}/drain"), { pool, id: "{{shardId}}" }),
      ...[op("PUT", "/v1/indexes/{index}"), op("POST", "/v1/indexes/{index}/vectors"), op("POST", "/v1/indexes/{index}/query"), op("DELETE", "/v1/indexes/{index}")].map((o) => path(o, { index: "contract-index" })),
      body(op("PUT", "/v1/indexes/{index}"), { dimensions: 3, metric: "cosine", precision: "int8" }),
      body(op("POST", "/v1/indexes/{index}/vectors"), { vectors: [{ id: "a", values: [1, 0, 0], metadata: { kind: "x" } }, { id: "b", values: [0, 1, 0] }] }),
      body(op("POST", "/v1/indexes/{index}/query"), { vector: [1, 0.1, 0], topK: 2, filter: { kind: "x" } }),
      path(op("DELETE", "/v1/indexes/{index}/vectors/{id}"), { index: "contract-index", id: "b" }),
      path("*::/v1/cache/{key}", { key: `${tenant}.${"0".repeat(64)}` }),
      body(op("POST", "/v1/cache/purge"), { tags: ["contract"] }),
      body(op("POST", "/v1/workflows"), { name: "contract", steps: [{ key: "a", type: `${pool}.work`, pool, payload: { n: 1 } }, { key: "b", type: `${pool}.work`, pool, dependsOn: ["a"] }] }),
      query(op("GET", "/v1/workflows"), { status: null, cursor: null, limit: "5" }),
      ...[op("GET", "/v1/workflows/{id}"), op("GET", "/v1/workflows/{id}/result"), op("POST", "/v1/workflows/{id}/cancel")].map((o) => path(o, { id: "{{workflowId}}" })),
      query(op("GET", "/v1/workflows/{id}/result"), { waitMs: "0" }),
      path(op("POST", "/v1/workflows/{id}/steps/{key}/retry"), { id: "{{workflowId}}", key: "a" }),
    ],
    globals: {
      orderOfFolders: ["Tenants, keys, tokens, audit", "Tasks", "Agents and leases", "Pools", "Shards", "Vector indexes", "Cache", "Workflows", "System"],
      orderOfOperations: ORDER,
      securityOverwrites: { bearer: { token: "{{bearerToken}}" } },
      collectionPreRequestScripts: [],
      keyValueReplacements: {},
      valueReplacements: {},
      rawReplacements: [],
    },
  };
}
