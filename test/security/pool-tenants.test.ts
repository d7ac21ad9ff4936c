import { describe, expect, it } from "vitest";
import { api, expectError, freshPool } from "../helpers";

/**
 * Who may change what in a shared pool (API.md, "Who may change what"): pool-wide configuration is the operators'
 * and the bootstrap key's; each tenant's own values (quota, weight, GPU-seconds) are set per tenant; operator keys
 * are made only by the bootstrap key.
 */

let tenants = 0;
function freshTenant(prefix = "pt"): string {
  tenants += 1;
  return `${prefix}-${tenants}-${Math.floor(performance.now())}`;
}

async function keyFor(tenant: string, roles: string[]): Promise<string> {
  const res = await api("POST", `/v1/tenants/${tenant}/keys`, { name: roles.join("+"), roles });
  if (res.status !== 201) throw new Error(`key creation answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.key;
}

/** A pool with one task of the tenant, so the tenant uses it. */
async function poolUsedBy(token: string): Promise<string> {
  const pool = freshPool("pt");
  expect((await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token })).status).toBe(201);
  return pool;
}

describe("pool-wide configuration", () => {
  it("is refused to a tenant's admin (403) and changes nothing; an operator and the bootstrap key may change it", async () => {
    const tenant = freshTenant();
    const [admin, operator] = await Promise.all([keyFor(tenant, ["admin"]), keyFor(tenant, ["operator"])]);
    const pool = await poolUsedBy(admin);
    expectError(await api("PUT", `/v1/pools/${pool}/config`, { maxUnfinishedPerTenant: 5 }, { token: admin }), 403, "forbidden");
    expect((await api("GET", `/v1/pools/${pool}/config`, undefined, { token: admin })).body.maxUnfinishedPerTenant).toBe(1_000_000);
    const byOperator = await api("PUT", `/v1/pools/${pool}/config`, { maxUnfinishedPerTenant: 5 }, { token: operator });
    expect(byOperator.status).toBe(200);
    expect(byOperator.body.maxUnfinishedPerTenant).toBe(5);
    expect((await api("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 6000 })).body).toMatchObject({ maxUnfinishedPerTenant: 5, heartbeatIntervalMs: 6000 });
  });

  it("operator keys are made by the bootstrap key only: a tenant's admin asking for one gets 403 and no key", async () => {
    const tenant = freshTenant();
    const admin = await keyFor(tenant, ["admin"]);
    expectError(await api("POST", `/v1/tenants/${tenant}/keys`, { name: "escalate", roles: ["operator"] }, { token: admin }), 403, "forbidden");
    expectError(await api("POST", `/v1/tenants/${tenant}/keys`, { name: "escalate", roles: ["client", "operator"] }, { token: admin }), 403, "forbidden");
    const keys = (await api("GET", `/v1/tenants/${tenant}/keys`, undefined, { token: admin })).body.keys as { roles: string[] }[];
    expect(keys.some((k) => k.roles.includes("operator"))).toBe(false);
    expect((await api("POST", `/v1/tenants/${tenant}/keys`, { name: "client", roles: ["client"] }, { token: admin })).status).toBe(201);
    expect((await api("POST", `/v1/tenants/${tenant}/keys`, { name: "ops", roles: ["operator"] })).status).toBe(201);
  });
});

describe("a tenant's own values in a pool", () => {
  it("default to the pool's ceiling, weight 1 and no GPU limit", async () => {
    const tenant = freshTenant();
    const admin = await keyFor(tenant, ["admin"]);
    const pool = await poolUsedBy(admin);
    const res = await api("GET", `/v1/pools/${pool}/tenants/${tenant}`, undefined, { token: admin });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ pool, tenant, maxUnfinished: 1_000_000, weight: 1, gpuSecondsPerHour: null });
  });

  it("let the tenant's admin lower its own maxUnfinished, which the quota then enforces, and raise it back up to its grant", async () => {
    const tenant = freshTenant();
    const [admin, client, operator] = await Promise.all([keyFor(tenant, ["admin"]), keyFor(tenant, ["client"]), keyFor(tenant, ["operator"])]);
    const pool = await poolUsedBy(client);
    const lowered = await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { maxUnfinished: 2 }, { token: admin });
    expect(lowered.status).toBe(200);
    expect(lowered.body.maxUnfinished).toBe(2);
    expect((await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: client })).status).toBe(201);
    const refused = await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: client });
    expectError(refused, 429, "rate_limited");
    expect(refused.body.error.details).toMatchObject({ scope: "quota", quota: 2 });
    // Another tenant in the same pool keeps the pool's ceiling.
    const other = freshTenant();
    const otherClient = await keyFor(other, ["client"]);
    for (let i = 0; i < 3; i++) expect((await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: otherClient })).status).toBe(201);
    // An operator grants 10; the admin's own choice is replaced by the grant, and the admin may then lower it again
    // but not go above it.
    expect((await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { maxUnfinished: 10 }, { token: operator })).body.maxUnfinished).toBe(10);
    expect((await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: client })).status).toBe(201);
    expect((await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { maxUnfinished: 4 }, { token: admin })).body.maxUnfinished).toBe(4);
    expect((await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { maxUnfinished: 10 }, { token: admin })).body.maxUnfinished).toBe(10);
    expectError(await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { maxUnfinished: 11 }, { token: admin }), 403, "forbidden");
    expect((await api("GET", `/v1/pools/${pool}/tenants/${tenant}`, undefined, { token: admin })).body.maxUnfinished).toBe(10);
  });

  it("refuse weight and gpuSecondsPerHour from a tenant's admin (403, nothing changes); operators and the bootstrap key set them", async () => {
    const tenant = freshTenant();
    const [admin, operator] = await Promise.all([keyFor(tenant, ["admin"]), keyFor(tenant, ["operator"])]);
    const pool = await poolUsedBy(admin);
    expectError(await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { weight: 5 }, { token: admin }), 403, "forbidden");
    expectError(await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { maxUnfinished: 3, gpuSecondsPerHour: 60 }, { token: admin }), 403, "forbidden");
    expect((await api("GET", `/v1/pools/${pool}/tenants/${tenant}`, undefined, { token: admin })).body).toMatchObject({ maxUnfinished: 1_000_000, weight: 1, gpuSecondsPerHour: null });
    expect((await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { weight: 5, gpuSecondsPerHour: 3600 }, { token: operator })).body).toMatchObject({ weight: 5, gpuSecondsPerHour: 3600 });
    expect((await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { gpuSecondsPerHour: null })).body).toMatchObject({ weight: 5, gpuSecondsPerHour: null });
  });

  it("refuse a maxUnfinished above the pool's ceiling (400 naming the field) and bad values (400)", async () => {
    const tenant = freshTenant();
    const operator = await keyFor(tenant, ["operator"]);
    const pool = await poolUsedBy(operator);
    expect((await api("PUT", `/v1/pools/${pool}/config`, { maxUnfinishedPerTenant: 50 }, { token: operator })).status).toBe(200);
    const above = await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { maxUnfinished: 51 }, { token: operator });
    expectError(above, 400, "invalid_request");
    expect(above.body.error.details[0].field).toBe("maxUnfinished");
    for (const body of [{ weight: 0 }, { weight: 1001 }, { weight: 1.5 }, { maxUnfinished: 0 }, { gpuSecondsPerHour: -1 }, { other: 1 }]) {
      expectError(await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, body, { token: operator }), 400, "invalid_request");
    }
    expect((await api("GET", `/v1/pools/${pool}/tenants/${tenant}`, undefined, { token: operator })).body).toMatchObject({ maxUnfinished: 50, weight: 1 });
    // A lower ceiling later caps what was granted.
    expect((await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { maxUnfinished: 40 }, { token: operator })).body.maxUnfinished).toBe(40);
    expect((await api("PUT", `/v1/pools/${pool}/config`, { maxUnfinishedPerTenant: 30 }, { token: operator })).status).toBe(200);
    expect((await api("GET", `/v1/pools/${pool}/tenants/${tenant}`, undefined, { token: operator })).body.maxUnfinished).toBe(30);
  });

  it("of another tenant answer 404 to an admin, not to an operator; a pool the caller's tenant never used is 404", async () => {
    const [mine, theirs] = [freshTenant(), freshTenant()];
    const [admin, operator, theirAdmin] = await Promise.all([keyFor(mine, ["admin"]), keyFor(mine, ["operator"]), keyFor(theirs, ["admin"])]);
    const pool = await poolUsedBy(admin);
    expect((await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: theirAdmin })).status).toBe(201);
    expectError(await api("GET", `/v1/pools/${pool}/tenants/${theirs}`, undefined, { token: admin }), 404, "not_found");
    expectError(await api("PUT", `/v1/pools/${pool}/tenants/${theirs}`, { maxUnfinished: 1 }, { token: admin }), 404, "not_found");
    expect((await api("GET", `/v1/pools/${pool}/tenants/${theirs}`, undefined, { token: operator })).status).toBe(200);
    const unused = freshPool("pt-unused");
    expect((await api("POST", "/v1/tasks", { type: `${unused}.work` }, { token: theirAdmin })).status).toBe(201);
    expectError(await api("GET", `/v1/pools/${unused}/tenants/${mine}`, undefined, { token: admin }), 404, "not_found");
    expectError(await api("GET", `/v1/pools/${freshPool("pt-none")}/tenants/${mine}`), 404, "not_found");
  });
});
