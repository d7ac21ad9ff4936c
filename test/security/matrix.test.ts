import { env, exports } from "cloudflare:workers";
import type { TaskRecord } from "../../contract/records";
import { sealEntry, writeL3 } from "../../lib/cache/levels";
import { beforeAll, describe, expect, it } from "vitest";
import { PERMISSIONS, PUBLIC, ROLES, type Role } from "../../src/security/permissions";
import { api } from "../helpers";
import { as, createKey, keysFor, type RoleKeys } from "./fixtures";

/**
 * The permission matrix, generated from the table in src/security/permissions.ts: every route x every role x
 * (a resource of the caller's tenant, one of another tenant) plus no credential at all.
 *
 * - no credential: 401; a role the table does not list: 403;
 * - a listed role on its own tenant's resource: anything but 401, 403 and 404 (it may still be a 409, e.g. a
 *   complete with a lease token that is not current: the call got past authentication and authorisation);
 * - a listed role on another tenant's resource: 404, as if it did not exist.
 * A route without a fixture here fails the test, so a new route cannot ship without being covered.
 */

const OWN = "mx-own";
const OTHER = "mx-other";
const SHARED_POOL = "mx-shared";
const OTHER_POOL = "mx-other-only";

interface Call {
  method: string;
  path: string;
  body?: unknown;
  /** A WebSocket upgrade (the connect route). */
  upgrade?: boolean;
}

interface Fixture {
  /** A call on a resource of the caller's tenant (or a call with no resource, such as a submit). */
  own: (role: Role) => Promise<Call>;
  /** The same call on a resource of another tenant; absent when the route has no such resource. */
  other?: () => Promise<Call>;
  /** How a listed role's call on another tenant's resource shows that it was refused, when not by a 404. */
  otherRefused?: (res: { status: number; body: any }) => void;
}

let own: RoleKeys;
let other: RoleKeys;
let ownTask: string;
let otherTask: string;
let serial = 0;

async function submitAs(key: string, pool: string): Promise<string> {
  const res = await as(key, "POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 1 } });
  if (res.status !== 201) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/** A cache entry of `tenant`, written to R2 and its index the way a coordinator's fill writes it. */
async function cachedEntry(tenant: string): Promise<string> {
  const key = `${tenant}.${(++serial).toString(16).padStart(64, "0")}`;
  const now = Date.now();
  const task = { id: `mx-${serial}`, type: "mx.work", pool: SHARED_POOL, tenant, status: "succeeded", payload: "{}", result: "1" } as unknown as TaskRecord;
  const entry = { key, tenant, type: "mx.work", version: "", tags: ["matrix"], task, createdAt: now, expiresAt: now + 60_000 };
  await writeL3(env, entry, await sealEntry(env, entry));
  await env.CACHE_INDEX.getByName(tenant).register({ key, type: entry.type, version: "", tags: entry.tags, sourceTaskId: task.id, createdAt: now, expiresAt: entry.expiresAt });
  return key;
}

async function agentOf(key: string, prefix: string): Promise<string> {
  const agentId = `${prefix}-${++serial}`;
  const res = await as(key, "POST", `/v1/pools/${SHARED_POOL}/agents`, { agentId, maxConcurrency: 5 });
  if (res.status !== 201) throw new Error(`register answered ${res.status}: ${JSON.stringify(res.body)}`);
  return agentId;
}

const taskRoute = (suffix: string, body?: unknown): Fixture => ({
  own: async () => ({ method: "POST", path: `/v1/tasks/${ownTask}${suffix}`, body }),
  other: async () => ({ method: "POST", path: `/v1/tasks/${otherTask}${suffix}`, body }),
});

const agentRoute = (method: string, suffix: string, body?: unknown): Fixture => ({
  own: async () => ({ method, path: `/v1/pools/${SHARED_POOL}/agents/${await agentOf(own.agent, "own")}${suffix}`, body }),
  other: async () => ({ method, path: `/v1/pools/${SHARED_POOL}/agents/${await agentOf(other.agent, "other")}${suffix}`, body }),
});

const poolRoute = (method: string, suffix: string, body?: unknown): Fixture => ({
  own: async () => ({ method, path: `/v1/pools/${SHARED_POOL}${suffix}`, body }),
  other: async () => ({ method, path: `/v1/pools/${OTHER_POOL}${suffix}`, body }),
});

const publicRoute = (method: string, path: string, body?: unknown): Fixture => ({ own: async () => ({ method, path, body }) });

/** A vector index of the tenant of `keys` (made with its operator key), holding one vector "v". */
async function indexOf(keys: RoleKeys): Promise<string> {
  const index = `mx-ix-${++serial}`;
  const made = await as(keys.operator, "PUT", `/v1/indexes/${index}`, { dimensions: 2 });
  if (made.status !== 201) throw new Error(`creating an index answered ${made.status}: ${JSON.stringify(made.body)}`);
  const put = await as(keys.operator, "POST", `/v1/indexes/${index}/vectors`, { vectors: [{ id: "v", values: [1, 0] }] });
  if (put.status !== 200) throw new Error(`an upsert answered ${put.status}: ${JSON.stringify(put.body)}`);
  return index;
}

const indexRoute = (method: string, suffix: string, body?: unknown): Fixture => ({
  own: async () => ({ method, path: `/v1/indexes/${await indexOf(own)}${suffix}`, body }),
  other: async () => ({ method, path: `/v1/indexes/${await indexOf(other)}${suffix}`, body }),
});

/** A one-step workflow of the tenant of `keys` (started with its client key); its task stays queued. */
async function workflowOf(keys: RoleKeys): Promise<string> {
  const res = await as(keys.client, "POST", "/v1/workflows", { steps: [{ key: "only", type: `${SHARED_POOL}.work`, payload: { n: 1 } }] });
  if (res.status !== 201) throw new Error(`starting a workflow answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.id;
}

const workflowRoute = (method: string, suffix: string, body?: unknown): Fixture => ({
  own: async () => ({ method, path: `/v1/workflows/${await workflowOf(own)}${suffix}`, body }),
  other: async () => ({ method, path: `/v1/workflows/${await workflowOf(other)}${suffix}`, body }),
});

/** An hourly schedule of the tenant of `keys` (made with its operator key). */
async function scheduleOf(keys: RoleKeys): Promise<string> {
  const res = await as(keys.operator, "POST", "/v1/schedules", { cron: "0 * * * *", task: { type: `${SHARED_POOL}.work` } });
  if (res.status !== 201) throw new Error(`creating a schedule answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.id;
}

const scheduleRoute = (method: string, suffix: string): Fixture => ({
  own: async () => ({ method, path: `/v1/schedules/${await scheduleOf(own)}${suffix}` }),
  other: async () => ({ method, path: `/v1/schedules/${await scheduleOf(other)}${suffix}` }),
});

const FIXTURES: Record<string, Fixture> = {
  "POST /v1/tasks": { own: async () => ({ method: "POST", path: "/v1/tasks", body: { type: `${SHARED_POOL}.work` } }) },
  "POST /v1/tasks/batch": { own: async () => ({ method: "POST", path: "/v1/tasks/batch", body: { tasks: [{ type: `${SHARED_POOL}.work` }] } }) },
  "GET /v1/tasks/:id": {
    own: async () => ({ method: "GET", path: `/v1/tasks/${ownTask}` }),
    other: async () => ({ method: "GET", path: `/v1/tasks/${otherTask}` }),
  },
  "GET /v1/tasks/:id/result": {
    own: async () => ({ method: "GET", path: `/v1/tasks/${ownTask}/result` }),
    other: async () => ({ method: "GET", path: `/v1/tasks/${otherTask}/result` }),
  },
  "POST /v1/tasks/:id/cancel": {
    own: async () => ({ method: "POST", path: `/v1/tasks/${await submitAs(own.client, SHARED_POOL)}/cancel` }),
    other: async () => ({ method: "POST", path: `/v1/tasks/${await submitAs(other.client, SHARED_POOL)}/cancel` }),
  },
  "POST /v1/tasks/:id/complete": taskRoute("/complete", { leaseToken: "not-current" }),
  "POST /v1/tasks/:id/fail": taskRoute("/fail", { leaseToken: "not-current" }),
  "POST /v1/tasks/:id/extend": taskRoute("/extend", { leaseToken: "not-current" }),
  "POST /v1/tasks/settle": {
    own: async () => ({ method: "POST", path: "/v1/tasks/settle", body: { items: [{ action: "complete", id: ownTask, leaseToken: "not-current" }] } }),
    other: async () => ({ method: "POST", path: "/v1/tasks/settle", body: { items: [{ action: "complete", id: otherTask, leaseToken: "not-current" }] } }),
    // A batch answers per item: another tenant's task is refused as not found inside a 200.
    otherRefused: (res) => {
      expect(res.status).toBe(200);
      expect(res.body.results[0].error.code).toBe("not_found");
    },
  },
  // Fenced by the lease token: a caller past authorisation gets 409 lease_lost for a token that is not current.
  "GET /v1/tasks/:id/payload": {
    own: async () => ({ method: "GET", path: `/v1/tasks/${ownTask}/payload?leaseToken=not-current` }),
    other: async () => ({ method: "GET", path: `/v1/tasks/${otherTask}/payload?leaseToken=not-current` }),
  },
  "POST /v1/pools/:pool/agents": { own: async () => ({ method: "POST", path: `/v1/pools/${SHARED_POOL}/agents`, body: { agentId: `reg-${++serial}` } }) },
  "GET /v1/pools/:pool/agents": poolRoute("GET", "/agents"),
  "GET /v1/pools/:pool/agents/:agentId": agentRoute("GET", ""),
  "PATCH /v1/pools/:pool/agents/:agentId": agentRoute("PATCH", "", { state: "paused" }),
  "DELETE /v1/pools/:pool/agents/:agentId": agentRoute("DELETE", ""),
  "POST /v1/pools/:pool/agents/:agentId/heartbeat": agentRoute("POST", "/heartbeat", { load: { currentLoad: 0.1 } }),
  "POST /v1/pools/:pool/agents/:agentId/lease": agentRoute("POST", "/lease", { max: 1 }),
  "GET /v1/pools/:pool/agents/:agentId/connect": {
    own: async () => ({ method: "GET", path: `/v1/pools/${SHARED_POOL}/agents/${await agentOf(own.agent, "own")}/connect`, upgrade: true }),
    other: async () => ({ method: "GET", path: `/v1/pools/${SHARED_POOL}/agents/${await agentOf(other.agent, "other")}/connect`, upgrade: true }),
  },
  "GET /v1/pools": { own: async () => ({ method: "GET", path: "/v1/pools" }) },
  "GET /v1/pools/:pool": poolRoute("GET", ""),
  "GET /v1/pools/:pool/tasks": poolRoute("GET", "/tasks"),
  "POST /v1/pools/:pool/dlq/redrive": poolRoute("POST", "/dlq/redrive", {}),
  "GET /v1/pools/:pool/config": poolRoute("GET", "/config"),
  "PUT /v1/pools/:pool/config": poolRoute("PUT", "/config", {}),
  "GET /v1/pools/:pool/tenants/:tenant": {
    own: async () => ({ method: "GET", path: `/v1/pools/${SHARED_POOL}/tenants/${OWN}` }),
    other: async () => ({ method: "GET", path: `/v1/pools/${OTHER_POOL}/tenants/${OWN}` }),
  },
  "PUT /v1/pools/:pool/tenants/:tenant": {
    own: async () => ({ method: "PUT", path: `/v1/pools/${SHARED_POOL}/tenants/${OWN}`, body: {} }),
    other: async () => ({ method: "PUT", path: `/v1/pools/${OTHER_POOL}/tenants/${OWN}`, body: {} }),
  },
  "GET /v1/pools/:pool/shards": poolRoute("GET", "/shards"),
  "GET /v1/pools/:pool/state": poolRoute("GET", "/state"),
  "POST /v1/pools/:pool/shards": poolRoute("POST", "/shards", {}),
  "POST /v1/pools/:pool/shards/:id/drain": {
    own: async () => {
      const added = await api("POST", `/v1/pools/${SHARED_POOL}/shards`, {});
      if (added.status !== 201) throw new Error(`adding a shard answered ${added.status}: ${JSON.stringify(added.body)}`);
      return { method: "POST", path: `/v1/pools/${SHARED_POOL}/shards/${added.body.id}/drain` };
    },
    other: async () => ({ method: "POST", path: `/v1/pools/${OTHER_POOL}/shards/0/drain` }),
  },
  "POST /v1/tenants/:tenant/keys": {
    own: async () => ({ method: "POST", path: `/v1/tenants/${OWN}/keys`, body: { name: "made in the matrix", roles: ["client"] } }),
    other: async () => ({ method: "POST", path: `/v1/tenants/${OTHER}/keys`, body: { name: "made in the matrix", roles: ["client"] } }),
  },
  "GET /v1/tenants/:tenant/keys": {
    own: async () => ({ method: "GET", path: `/v1/tenants/${OWN}/keys` }),
    other: async () => ({ method: "GET", path: `/v1/tenants/${OTHER}/keys` }),
  },
  "DELETE /v1/tenants/:tenant/keys/:id": {
    own: async () => ({ method: "DELETE", path: `/v1/tenants/${OWN}/keys/${(await createKey(OWN, ["client"])).id}` }),
    other: async () => ({ method: "DELETE", path: `/v1/tenants/${OTHER}/keys/${(await createKey(OTHER, ["client"])).id}` }),
  },
  // Another tenant's usage: 404 for its admin and auditor, but an operator sees every tenant's (test/governor/usage.test.ts).
  "GET /v1/tenants/:tenant/usage": { own: async () => ({ method: "GET", path: `/v1/tenants/${OWN}/usage` }) },
  "POST /v1/auth/token": publicRoute("POST", "/v1/auth/token", { apiKey: "daa.nobody.AAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }),
  "GET /v1/indexes": { own: async () => ({ method: "GET", path: "/v1/indexes" }) },
  // Index names are the caller's tenant's: a PUT of another tenant's name makes an index of the caller's own.
  "PUT /v1/indexes/:index": { own: async () => ({ method: "PUT", path: `/v1/indexes/mx-ix-${++serial}`, body: { dimensions: 2 } }) },
  "DELETE /v1/indexes/:index": indexRoute("DELETE", ""),
  "POST /v1/indexes/:index/vectors": indexRoute("POST", "/vectors", { vectors: [{ id: "w", values: [0, 1] }] }),
  "DELETE /v1/indexes/:index/vectors/:id": indexRoute("DELETE", "/vectors/v"),
  "POST /v1/indexes/:index/query": indexRoute("POST", "/query", { vector: [1, 0], topK: 1 }),
  "GET /v1/audit": {
    own: async () => ({ method: "GET", path: "/v1/audit" }),
    other: async () => ({ method: "GET", path: `/v1/audit?tenant=${OTHER}` }),
  },
  "GET /v1/audit/verify": {
    own: async () => ({ method: "GET", path: "/v1/audit/verify" }),
    other: async () => ({ method: "GET", path: `/v1/audit/verify?tenant=${OTHER}` }),
  },
  "GET /v1/cache/:key": {
    own: async () => ({ method: "GET", path: `/v1/cache/${await cachedEntry(OWN)}` }),
    other: async () => ({ method: "GET", path: `/v1/cache/${await cachedEntry(OTHER)}` }),
  },
  "DELETE /v1/cache/:key": {
    own: async () => ({ method: "DELETE", path: `/v1/cache/${await cachedEntry(OWN)}` }),
    other: async () => ({ method: "DELETE", path: `/v1/cache/${await cachedEntry(OTHER)}` }),
  },
  "POST /v1/cache/purge": { own: async () => ({ method: "POST", path: "/v1/cache/purge", body: { tags: ["matrix"] } }) },
  "POST /v1/workflows": { own: async () => ({ method: "POST", path: "/v1/workflows", body: { steps: [{ key: "a", type: `${SHARED_POOL}.work` }] } }) },
  "GET /v1/workflows": { own: async () => ({ method: "GET", path: "/v1/workflows" }) },
  "GET /v1/workflows/:id": workflowRoute("GET", ""),
  "GET /v1/workflows/:id/result": workflowRoute("GET", "/result"),
  "POST /v1/workflows/:id/cancel": workflowRoute("POST", "/cancel"),
  // A step that has not failed cannot be retried: past authorisation the caller gets 409.
  "POST /v1/workflows/:id/steps/:key/retry": workflowRoute("POST", "/steps/only/retry"),
  "POST /v1/schedules": { own: async () => ({ method: "POST", path: "/v1/schedules", body: { cron: "0 * * * *", task: { type: `${SHARED_POOL}.work` } } }) },
  "GET /v1/schedules": { own: async () => ({ method: "GET", path: "/v1/schedules" }) },
  "GET /v1/schedules/:id": scheduleRoute("GET", ""),
  "POST /v1/schedules/:id/pause": scheduleRoute("POST", "/pause"),
  "POST /v1/schedules/:id/resume": scheduleRoute("POST", "/resume"),
  "POST /v1/schedules/:id/trigger": scheduleRoute("POST", "/trigger"),
  "DELETE /v1/schedules/:id": scheduleRoute("DELETE", ""),
  "GET /metrics": { own: async () => ({ method: "GET", path: "/metrics" }) },
  "GET /healthz": publicRoute("GET", "/healthz"),
  "GET /openapi.json": publicRoute("GET", "/openapi.json"),
  "GET /": publicRoute("GET", "/"),
  "GET /dashboard.js": publicRoute("GET", "/dashboard.js"),
};

async function send(token: string | null, call: Call): Promise<{ status: number; body: any }> {
  if (!call.upgrade) return as(token, call.method, call.path, call.body);
  const headers: Record<string, string> = { upgrade: "websocket" };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await exports.default.fetch(new Request(`https://mesh.test${call.path}`, { headers }));
  if (res.webSocket) {
    res.webSocket.accept();
    res.webSocket.close(1000, "matrix done");
    return { status: res.status, body: null };
  }
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  [own, other] = await Promise.all([keysFor(OWN, SHARED_POOL), keysFor(OTHER, SHARED_POOL)]);
  ownTask = await submitAs(own.client, SHARED_POOL);
  otherTask = await submitAs(other.client, SHARED_POOL);
  await submitAs(other.client, OTHER_POOL);
});

describe("the permission matrix", () => {
  it("has a rule for every route the Worker serves, and a fixture here for every rule", async () => {
    const doc = (await api("GET", "/openapi.json", undefined, { token: null })).body;
    const served = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`),
    );
    expect(served.sort()).toEqual(Object.keys(PERMISSIONS).sort());
    expect(Object.keys(FIXTURES).sort()).toEqual(Object.keys(PERMISSIONS).sort());
  });

  for (const [route, rule] of Object.entries(PERMISSIONS)) {
    describe(route, () => {
      const fixture = FIXTURES[route]!;

      it("without a credential", async () => {
        const res = await send(null, await fixture.own("admin"));
        if (rule === PUBLIC) expect([401, 403]).not.toContain(res.status === 401 && route === "POST /v1/auth/token" ? 0 : res.status);
        else expect(res.status, JSON.stringify(res.body)).toBe(401);
      });

      for (const role of ROLES) {
        const allowed = rule === PUBLIC || rule.includes(role);
        it(`${role}: ${allowed ? "allowed" : "forbidden"} on its own tenant${fixture.other && allowed && rule !== PUBLIC ? ", 404 on another's" : ""}`, async () => {
          const res = await send(own[role], await fixture.own(role));
          if (!allowed) {
            expect(res.status, JSON.stringify(res.body)).toBe(403);
            expect(res.body.error.code).toBe("forbidden");
            return;
          }
          if (route === "POST /v1/auth/token") expect(res.status).toBe(401);
          else expect([401, 403, 404], `${res.status} ${JSON.stringify(res.body)}`).not.toContain(res.status);
          if (!fixture.other || rule === PUBLIC) return;
          const refused = await send(own[role], await fixture.other());
          if (fixture.otherRefused) fixture.otherRefused(refused);
          else {
            expect(refused.status, JSON.stringify(refused.body)).toBe(404);
            expect(refused.body.error.code).toBe("not_found");
          }
        });
      }
    });
  }
});
