import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { keyringFromEnv } from "../../lib/security/keyring";
import { issueToken } from "../../lib/security/tokens";
import { api, expectError, freshPool } from "../helpers";
import { as, createKey, keysFor, type RoleKeys } from "./fixtures";

const b64url = (s: string) => btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

describe("API keys and tokens", () => {
  it("are created by an admin, shown once, listed without secrets, and validated", async () => {
    const res = await api("POST", "/v1/tenants/acme/keys", { name: "ci", roles: ["client"] });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: "ci", roles: ["client"], tenant: "acme", pool: null });
    expect(res.body.key).toMatch(/^daa\.acme\.[A-Za-z0-9_-]{12}\.[A-Za-z0-9_-]{43}$/);
    const list = await api("GET", "/v1/tenants/acme/keys");
    const listed = list.body.keys.find((k: any) => k.id === res.body.id);
    expect(listed).toEqual({ id: res.body.id, name: "ci", roles: ["client"], tenant: "acme", pool: null, createdAt: res.body.createdAt, revokedAt: null });
    expect(JSON.stringify(list.body)).not.toContain(res.body.key.split(".")[3]);
    expectError(await api("POST", "/v1/tenants/acme/keys", { name: "x", roles: ["agent"] }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tenants/acme/keys", { name: "x", roles: ["client"], pool: "p" }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tenants/acme/keys", { name: "x", roles: ["root"] }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tenants/acme/keys", { name: "x", roles: [] }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tenants/Not_Valid!/keys", { name: "x", roles: ["client"] }), 404, "not_found");
  });

  it("an admin key manages only its own tenant; the bootstrap key crosses tenants", async () => {
    const admin = await createKey("own-admin", ["admin"]);
    expect((await as(admin.key, "POST", "/v1/tenants/own-admin/keys", { name: "k", roles: ["client"] })).status).toBe(201);
    expectError(await as(admin.key, "POST", "/v1/tenants/someone-else/keys", { name: "k", roles: ["admin"] }), 404, "not_found");
    expectError(await as(admin.key, "GET", "/v1/tenants/someone-else/keys"), 404, "not_found");
    expect((await api("GET", "/v1/tenants/someone-else/keys")).status).toBe(200);
  });

  it("a key exchanges for a token that carries its tenant and roles; a bad key gets 401", async () => {
    const key = await createKey("tok", ["client"]);
    const res = await api("POST", "/v1/auth/token", { apiKey: key.key }, { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tenant: "tok", roles: ["client"] });
    const lifetime = Date.parse(res.body.expiresAt) - Date.now();
    expect(lifetime).toBeGreaterThan(890_000);
    expect(lifetime).toBeLessThanOrEqual(900_000);
    const header = JSON.parse(atob(res.body.token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/")));
    expect(header).toMatchObject({ alg: "HS256", kid: "v1" });
    const submitted = await as(res.body.token, "POST", "/v1/tasks", { type: `${freshPool()}.x` });
    expect(submitted.status).toBe(201);
    expect(submitted.body.tenant).toBe("tok");
    expectError(await api("POST", "/v1/auth/token", { apiKey: `${key.key}x` }, { token: null }), 401, "unauthorized");
    expectError(await api("POST", "/v1/auth/token", { apiKey: "not-a-key" }, { token: null }), 401, "unauthorized");
  });

  it("revoking a key stops it at once; tokens issued from it run out within their lifetime", async () => {
    const key = await createKey("rev", ["client"]);
    const token = (await api("POST", "/v1/auth/token", { apiKey: key.key }, { token: null })).body.token;
    const pool = freshPool();
    expect((await as(key.key, "POST", "/v1/tasks", { type: `${pool}.x` })).status).toBe(201);
    const revoked = await api("DELETE", `/v1/tenants/rev/keys/${key.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    expectError(await as(key.key, "POST", "/v1/tasks", { type: `${pool}.x` }), 401, "unauthorized");
    expectError(await api("POST", "/v1/auth/token", { apiKey: key.key }, { token: null }), 401, "unauthorized");
    expect((await as(token, "POST", "/v1/tasks", { type: `${pool}.x` })).status).toBe(201);
    expectError(await api("DELETE", "/v1/tenants/rev/keys/AAAAAAAAAAAA"), 404, "not_found");
  });

  it("forged, expired, premature and foreign tokens are refused with 401", async () => {
    const keyring = keyringFromEnv(env);
    const claims = { keyId: "AAAAAAAAAAAA", tenant: "forge", roles: ["admin"], pool: null };
    const good = await issueToken(keyring, claims, 60);
    expect((await as(good.token, "GET", "/v1/tenants/forge/keys")).status).toBe(200);
    const [h, p, s] = good.token.split(".");
    const none = `${b64url(JSON.stringify({ alg: "none", typ: "JWT", kid: "v1" }))}.${p}.`;
    const elevated = `${h}.${b64url(JSON.stringify({ ...JSON.parse(atob(p!.replace(/-/g, "+").replace(/_/g, "/"))), ten: "victim" }))}.${s}`;
    const foreign = await issueToken(keyringFromEnv({ DAA_MASTER_KEY: "another-master-key-entirely" }), claims, 60);
    const expired = await issueToken(keyring, claims, 60, Date.now() - 120_000);
    const premature = await issueToken(keyring, claims, 60, Date.now() + 120_000);
    for (const token of [none, elevated, foreign.token, expired.token, premature.token, `${h}.${p}`, "a.b.c"]) {
      expectError(await as(token, "GET", "/v1/tenants/forge/keys"), 401, "unauthorized");
    }
  });
});

describe("tenant isolation", () => {
  let a: RoleKeys;
  let b: RoleKeys;
  const pool = "iso-shared";

  beforeAll(async () => {
    [a, b] = await Promise.all([keysFor("iso-a", pool), keysFor("iso-b", pool)]);
  });

  it("a tenant whose first write was refused still owns the pool after its next write succeeds", async () => {
    const keys = await keysFor("iso-late", pool);
    const ghost = `${pool}.0.AAAAAAAAAAAAAAAAAAAAAA`;
    // The first write of this tenant rolls back (an unknown dependency): nothing of it may stay, not even in caches.
    expectError(await as(keys.client, "POST", "/v1/tasks", { type: `${pool}.x`, dependsOn: [ghost] }), 400, "invalid_request");
    expectError(await as(keys.client, "GET", `/v1/pools/${pool}`), 404, "not_found");
    expect((await as(keys.client, "POST", "/v1/tasks", { type: `${pool}.x` })).status).toBe(201);
    expect((await as(keys.client, "GET", `/v1/pools/${pool}`)).body.queue.queued).toBe(1);
    expect((await as(keys.client, "GET", "/v1/pools")).body.pools.map((p: any) => p.pool)).toEqual([pool]);
  });

  it("another tenant's task answers 404 everywhere, and lists and counts show only one's own", async () => {
    const mine = (await as(a.client, "POST", "/v1/tasks", { type: `${pool}.x`, payload: { who: "a" } })).body;
    const theirs = (await as(b.client, "POST", "/v1/tasks", { type: `${pool}.x`, payload: { who: "b" } })).body;
    expect((await as(a.client, "GET", `/v1/tasks/${mine.id}`)).status).toBe(200);
    expectError(await as(a.client, "GET", `/v1/tasks/${theirs.id}`), 404, "not_found");
    expectError(await as(a.admin, "POST", `/v1/tasks/${theirs.id}/cancel`), 404, "not_found");
    const listed = await as(a.operator, "GET", `/v1/pools/${pool}/tasks`);
    expect(listed.body.tasks.map((t: any) => t.id)).toContain(mine.id);
    expect(listed.body.tasks.every((t: any) => t.tenant === "iso-a")).toBe(true);
    const stats = (await as(a.client, "GET", `/v1/pools/${pool}`)).body;
    const adminStats = (await api("GET", `/v1/pools/${pool}`)).body;
    expect(stats.queue.queued).toBeLessThan(adminStats.queue.queued);
    const pools = (await as(b.client, "GET", "/v1/pools")).body.pools.map((p: any) => p.pool);
    expect(pools).toEqual([pool]);
    const metrics: string = (await as(a.operator, "GET", "/metrics")).body;
    expect(metrics).toContain(`daa_tasks{pool="${pool}",status="queued"} ${stats.queue.queued}`);
  });

  it("a tenant-bound agent leases only its tenant's tasks; the shared fleet serves every tenant", async () => {
    const p = freshPool("fleet");
    const ka = await createKey("iso-a", ["agent"], p);
    const ca = await createKey("iso-a", ["client"]);
    const cb = await createKey("iso-b", ["client"]);
    const ta = (await as(ca.key, "POST", "/v1/tasks", { type: `${p}.x` })).body;
    const tb = (await as(cb.key, "POST", "/v1/tasks", { type: `${p}.x`, priority: 9 })).body;
    await as(ka.key, "POST", `/v1/pools/${p}/agents`, { agentId: "bound", maxConcurrency: 10 });
    const leasedByBound = (await as(ka.key, "POST", `/v1/pools/${p}/agents/bound/lease`, { max: 10 })).body.tasks;
    expect(leasedByBound.map((t: any) => t.id)).toEqual([ta.id]);
    expect(leasedByBound[0].tenant).toBe("iso-a");
    await api("POST", `/v1/pools/${p}/agents`, { agentId: "shared", maxConcurrency: 10 });
    const leasedByShared = (await api("POST", `/v1/pools/${p}/agents/shared/lease`, { max: 10 })).body.tasks;
    expect(leasedByShared.map((t: any) => t.id)).toEqual([tb.id]);
    // A tenant admin is no fleet operator: it cannot act for the shared fleet.
    expectError(await as(a.admin, "POST", `/v1/pools/${p}/agents/shared/heartbeat`, {}), 404, "not_found");
    // The shared agent's holder completes a task of tenant iso-b; its result reads back to that tenant.
    const done = await api("POST", `/v1/tasks/${tb.id}/complete`, { leaseToken: leasedByShared[0].leaseToken, result: { by: "shared" } });
    expect(done.status).toBe(200);
    expect((await as(cb.key, "GET", `/v1/tasks/${tb.id}`)).body.result).toEqual({ by: "shared" });
  });

  it("an operator's agents are shared-fleet agents it may run", async () => {
    const p = freshPool("opfleet");
    const op = await createKey("iso-a", ["operator"]);
    const cb = await createKey("iso-b", ["client"]);
    const tb = (await as(cb.key, "POST", "/v1/tasks", { type: `${p}.x` })).body;
    const agent = await as(op.key, "POST", `/v1/pools/${p}/agents`, { agentId: "op-agent" });
    expect(agent.body.tenant).toBeNull();
    const leased = (await as(op.key, "POST", `/v1/pools/${p}/agents/op-agent/lease`, { max: 5 })).body.tasks;
    expect(leased.map((t: any) => t.id)).toEqual([tb.id]);
    expect((await as(op.key, "POST", `/v1/tasks/${tb.id}/complete`, { leaseToken: leased[0].leaseToken })).status).toBe(200);
  });

  it("an agent key is bound to its pool and acts only for the agents it registered", async () => {
    const p = freshPool("bound");
    const mine = await createKey("iso-a", ["agent"], p);
    const sibling = await createKey("iso-a", ["agent"], p);
    const client = await createKey("iso-a", ["client"]);
    const t = (await as(client.key, "POST", "/v1/tasks", { type: `${p}.x` })).body;
    expect((await as(mine.key, "POST", `/v1/pools/${p}/agents`, { agentId: "m1" })).status).toBe(201);
    expectError(await as(mine.key, "POST", `/v1/pools/${freshPool()}/agents`, { agentId: "m2" }), 403, "forbidden");
    expectError(await as(mine.key, "POST", "/v1/tasks", { type: `${p}.x` }), 403, "forbidden");
    expectError(await as(mine.key, "GET", `/v1/tasks/${t.id}`), 403, "forbidden");
    expectError(await as(mine.key, "GET", `/v1/pools/${p}/tasks`), 403, "forbidden");
    expectError(await as(sibling.key, "POST", `/v1/pools/${p}/agents/m1/lease`, {}), 404, "not_found");
    expectError(await as(sibling.key, "POST", `/v1/pools/${p}/agents/m1/heartbeat`, {}), 404, "not_found");
    const [l] = (await as(mine.key, "POST", `/v1/pools/${p}/agents/m1/lease`, { max: 1 })).body.tasks;
    expect(l.id).toBe(t.id);
    // Even with the right token, a sibling key cannot settle a lease of an agent it did not register.
    expectError(await as(sibling.key, "POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken }), 409, "lease_lost");
    const settle = await as(sibling.key, "POST", "/v1/tasks/settle", { items: [{ action: "complete", id: t.id, leaseToken: l.leaseToken }] });
    expect(settle.body.results[0].error.code).toBe("lease_lost");
    expect((await as(mine.key, "POST", `/v1/tasks/${t.id}/complete`, { leaseToken: l.leaseToken, result: 1 })).status).toBe(200);
  });
});
