/**
 * Request rate limits, in the `workerd-limits` project (vitest.config.ts), where the credential limiter allows 5
 * and the tenant limiter 8 requests per 10-second window. The platform's windows are aligned to the wall clock
 * and every key rolls over at the same instant, so each test first makes sure enough of the current window is
 * left for everything it counts (waiting for the next window if not): nothing here can straddle a boundary.
 * Keys are made directly in the tenants' key stores, so that setting up spends nothing from any limiter.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hashKey, newApiKey } from "../../src/security/credentials";
import type { Role } from "../../src/security/permissions";
import { api, freshPool, type ApiResponse } from "../helpers";

const WINDOW_MS = 10_000;
const CREDENTIAL_LIMIT = 5;
const TENANT_LIMIT = 8;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits, if need be, until at least `needMs` are left in the current window; answers the window's number. */
async function windowWithRoom(needMs: number): Promise<number> {
  const left = WINDOW_MS - (Date.now() % WINDOW_MS);
  if (left < needMs) await sleep(left + 20);
  return Math.floor(Date.now() / WINDOW_MS);
}

/** Seconds left in the window at `t`, as the contract's Retry-After counts them (whole seconds, at least 1). */
const secondsLeft = (t: number) => Math.max(1, Math.ceil((WINDOW_MS - (t % WINDOW_MS)) / 1000));

let tenants = 0;
function freshTenant(): string {
  tenants += 1;
  return `rl-${tenants}-${Math.floor(performance.now())}`;
}

async function makeKey(tenant: string, roles: Role[]): Promise<{ id: string; key: string }> {
  const { id, key } = newApiKey(tenant);
  await env.KEYS.getByName(tenant).create({ id, name: roles.join("+"), roles, pool: null, hash: await hashKey(key), now: Date.now() });
  return { id, key };
}

/** Makes the request and checks it was refused as over a limit, with Retry-After the seconds left in the window. */
async function expectLimited(request: () => Promise<ApiResponse>, scope: "credential" | "tenant"): Promise<number> {
  const before = Date.now();
  const res = await request();
  const after = Date.now();
  expect(res.status).toBe(429);
  const seconds = res.body?.error?.details?.retryAfterSeconds as number;
  expect(res.body).toEqual({
    error: { code: "rate_limited", message: `too many requests for this ${scope}; retry after ${seconds} s`, details: { scope, retryAfterSeconds: seconds } },
  });
  expect(res.headers.get("retry-after")).toBe(String(seconds));
  expect([...new Set([secondsLeft(before), secondsLeft(after)])]).toContain(seconds);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeLessThanOrEqual(10);
  return seconds;
}

/** The tenant of each task row in the pool, oldest first. */
async function taskRows(pool: string): Promise<string[]> {
  return runInDurableObject(env.POOL.getByName(pool), (_, state) =>
    state.storage.sql.exec<{ tenant: string }>("SELECT tenant FROM tasks ORDER BY seq").toArray().map((r) => r.tenant),
  );
}

describe("rate limits", () => {
  it("refuses a credential over its limit with 429 and Retry-After, does nothing, and lets it in again in the next window", async () => {
    const tenant = freshTenant();
    const pool = freshPool("rl");
    const client = await makeKey(tenant, ["client"]);
    const other = await makeKey(tenant, ["client"]);
    const submit = (token: string, n: number) => api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n } }, { token });

    const window = await windowWithRoom(4000);
    for (let n = 1; n <= CREDENTIAL_LIMIT; n++) expect((await submit(client.key, n)).status).toBe(201);
    const wait = await expectLimited(() => submit(client.key, 6), "credential");
    expect(Math.floor(Date.now() / WINDOW_MS)).toBe(window);

    // The refused submit created nothing and recorded nothing.
    expect(await taskRows(pool)).toEqual(Array(CREDENTIAL_LIMIT).fill(tenant));
    const audit = await env.AUDIT.getByName(tenant).list(1000, null);
    expect(audit.records.filter((r) => r.action === "task.submit")).toHaveLength(CREDENTIAL_LIMIT);
    // Refused again, for any route, and a token exchanged from the key shares its allowance...
    await expectLimited(() => api("GET", "/v1/pools", undefined, { token: client.key }), "credential");
    const token = await api("POST", "/v1/auth/token", { apiKey: client.key }, { token: null, headers: { "cf-connecting-ip": "192.0.2.1" } });
    expect(token.status).toBe(200);
    await expectLimited(() => api("GET", "/v1/pools", undefined, { token: token.body.token }), "credential");
    // ...while another credential of the same tenant still has its own allowance.
    expect((await submit(other.key, 7)).status).toBe(201);

    // After Retry-After seconds, the next window lets the credential in again.
    await sleep(wait * 1000 + 20);
    expect(Math.floor(Date.now() / WINDOW_MS)).toBe(window + 1);
    expect((await submit(client.key, 8)).status).toBe(201);
    expect(await taskRows(pool)).toHaveLength(CREDENTIAL_LIMIT + 2);
  });

  it("counts every credential of a tenant against the tenant's limit, and no other tenant's", async () => {
    const tenant = freshTenant();
    const [k1, k2] = [await makeKey(tenant, ["client"]), await makeKey(tenant, ["operator"])];
    const neighbour = await makeKey(freshTenant(), ["client"]);
    const get = (token: string) => api("GET", "/v1/pools", undefined, { token });

    const window = await windowWithRoom(4000);
    // Four each: both credentials stay under their own limit of five, the tenant reaches its eight.
    for (let i = 0; i < TENANT_LIMIT / 2; i++) {
      expect((await get(k1.key)).status).toBe(200);
      expect((await get(k2.key)).status).toBe(200);
    }
    await expectLimited(() => get(k2.key), "tenant");
    await expectLimited(() => get(k1.key), "tenant");
    // A third credential of the tenant, unused so far, and a token of it are refused too.
    const k3 = await makeKey(tenant, ["client"]);
    await expectLimited(() => get(k3.key), "tenant");
    const token = await api("POST", "/v1/auth/token", { apiKey: k3.key }, { token: null, headers: { "cf-connecting-ip": "192.0.2.10" } });
    expect(token.status).toBe(200);
    await expectLimited(() => get(token.body.token), "tenant");
    // Another tenant is not affected.
    for (let i = 0; i < CREDENTIAL_LIMIT; i++) expect((await get(neighbour.key)).status).toBe(200);
    expect(Math.floor(Date.now() / WINDOW_MS)).toBe(window);
  });

  it("does not let a credential over its own limit use up its tenant's allowance", async () => {
    const tenant = freshTenant();
    const [noisy, quiet] = [await makeKey(tenant, ["client"]), await makeKey(tenant, ["client"])];
    const get = (token: string) => api("GET", "/v1/pools", undefined, { token });

    const window = await windowWithRoom(4000);
    for (let i = 0; i < CREDENTIAL_LIMIT; i++) expect((await get(noisy.key)).status).toBe(200);
    // The noisy credential keeps calling after its limit: refused, and counted against nothing else.
    for (let i = 0; i < 5; i++) await expectLimited(() => get(noisy.key), "credential");
    // The tenant has used five of its eight: the quiet credential gets exactly the three left.
    for (let i = 0; i < TENANT_LIMIT - CREDENTIAL_LIMIT; i++) expect((await get(quiet.key)).status).toBe(200);
    await expectLimited(() => get(quiet.key), "tenant");
    expect(Math.floor(Date.now() / WINDOW_MS)).toBe(window);
  });

  it("limits failed authentications per address (cf-connecting-ip), before they reach the audit log", async () => {
    const address = `198.51.100.${10 + tenants}`;
    const elsewhere = `198.51.100.${200 + tenants}`;
    const valid = await makeKey(freshTenant(), ["client"]);
    const forged = newApiKey("nobody").key;
    const from = (ip: string, token: string | null) => api("GET", "/v1/pools", undefined, { token, headers: { "cf-connecting-ip": ip } });

    const window = await windowWithRoom(4000);
    for (let i = 0; i < CREDENTIAL_LIMIT; i++) {
      const res = await from(address, i % 2 === 0 ? forged : "not-a-credential");
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("unauthorized");
    }
    await expectLimited(() => from(address, forged), "credential");
    await expectLimited(() => from(address, null), "credential");
    // Another address is not limited, and neither is a valid credential from the limited one.
    expect((await from(elsewhere, forged)).status).toBe(401);
    expect((await from(address, valid.key)).status).toBe(200);
    expect(Math.floor(Date.now() / WINDOW_MS)).toBe(window);

    // Only the attempts let through were recorded in _system.
    const system = await env.AUDIT.getByName("_system").list(1000, null);
    let records = system.records;
    for (let cursor = system.cursor; cursor !== null; ) {
      const page = await env.AUDIT.getByName("_system").list(1000, cursor);
      records = records.concat(page.records);
      cursor = page.cursor;
    }
    expect(records.filter((r) => r.ip === address).map((r) => r.action)).toEqual(Array(CREDENTIAL_LIMIT).fill("auth.failed"));
    expect(records.filter((r) => r.ip === elsewhere)).toHaveLength(1);
  });

  it("limits the token exchange per address too", async () => {
    const address = `203.0.113.${50 + tenants}`;
    const valid = await makeKey(freshTenant(), ["client"]);
    const exchange = (apiKey: string, ip = address) => api("POST", "/v1/auth/token", { apiKey }, { token: null, headers: { "cf-connecting-ip": ip } });

    const window = await windowWithRoom(4000);
    expect((await exchange(valid.key)).status).toBe(200);
    for (let i = 1; i < CREDENTIAL_LIMIT; i++) expect((await exchange(newApiKey("nobody").key)).status).toBe(401);
    // Guessing stops here, and so does a right key from the same address until the window ends.
    await expectLimited(() => exchange(newApiKey("nobody").key), "credential");
    await expectLimited(() => exchange(valid.key), "credential");
    expect((await exchange(valid.key, `203.0.113.${150 + tenants}`)).status).toBe(200);
    expect(Math.floor(Date.now() / WINDOW_MS)).toBe(window);
  });
});
