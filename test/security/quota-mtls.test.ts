import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN_KEY as ADMIN, api, expectError, freshPool, type ApiResponse } from "../helpers";

/** A tenant name no other test uses. */
let tenants = 0;
function freshTenant(prefix = "qm"): string {
  tenants += 1;
  return `${prefix}-${tenants}-${Math.floor(performance.now())}`;
}

/** Creates an API key with the super-admin key and answers the secret. */
async function keyFor(tenant: string, roles: string[], pool?: string): Promise<string> {
  const res = await api("POST", `/v1/tenants/${tenant}/keys`, { name: `${roles.join("+")} key`, roles, ...(pool ? { pool } : {}) });
  if (res.status !== 201) throw new Error(`key creation answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.key;
}

/** How many unfinished (waiting, queued, leased) tasks a tenant has in a pool, straight from the table. */
async function unfinishedRows(pool: string, tenant: string): Promise<number> {
  return runInDurableObject(env.POOL.getByName(pool), (_, state) =>
    state.storage.sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE tenant = ? AND status IN ('waiting', 'queued', 'leased')", tenant)
      .one().n,
  );
}

async function allRows(pool: string): Promise<number> {
  return runInDurableObject(env.POOL.getByName(pool), (_, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks").one().n);
}

function expectQuotaRefusal(res: ApiResponse, quota: number): void {
  expectError(res, 429, "rate_limited");
  expect(res.body.error.details).toEqual({ scope: "quota", quota, retryAfterSeconds: 5 });
  expect(res.headers.get("retry-after")).toBe("5");
}

describe("per-tenant quota of unfinished tasks (maxUnfinishedPerTenant)", () => {
  it("allows at most the quota of waiting + queued + leased tasks; the next submit is 429 and creates nothing", async () => {
    const pool = freshPool("quota");
    const tenant = freshTenant();
    const client = await keyFor(tenant, ["client"]);
    const config = await api("PUT", `/v1/pools/${pool}/config`, { maxUnfinishedPerTenant: 3 });
    expect(config.status).toBe(200);
    expect(config.body.maxUnfinishedPerTenant).toBe(3);

    // One of each unfinished status: waiting (delayed), queued, and leased.
    const waiting = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 1 }, delayMs: 600_000 }, { token: client });
    expect(waiting.status).toBe(201);
    expect(waiting.body.status).toBe("waiting");
    const toLease = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 2 } }, { token: client });
    expect(toLease.status).toBe(201);
    expect((await api("POST", `/v1/pools/${pool}/agents`, { agentId: "a1", maxConcurrency: 5 })).status).toBe(201);
    const leased = await api("POST", `/v1/pools/${pool}/agents/a1/lease`, { max: 1 });
    expect(leased.body.tasks.map((t: { id: string }) => t.id)).toEqual([toLease.body.id]);
    const queued = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 3 }, idempotencyKey: "third" }, { token: client });
    expect(queued.status).toBe(201);
    expect(queued.body.status).toBe("queued");
    expect(await unfinishedRows(pool, tenant)).toBe(3);

    const fourth = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 4 } }, { token: client });
    expectQuotaRefusal(fourth, 3);
    expect(await unfinishedRows(pool, tenant)).toBe(3);
    expect(await allRows(pool)).toBe(3);
    const listed = await api("GET", `/v1/pools/${pool}/tasks`, undefined, { token: client });
    expect(listed.body.tasks.map((t: { payload: { n: number } }) => t.payload.n)).toEqual([1, 2, 3]);

    // A repeated idempotency key creates nothing, so it is answered even at the quota.
    const repeat = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 3 }, idempotencyKey: "third" }, { token: client });
    expect(repeat.status).toBe(200);
    expect(repeat.body.id).toBe(queued.body.id);

    // Finishing the leased task frees one place: one more submit is accepted, the next is refused again.
    const done = await api("POST", `/v1/tasks/${toLease.body.id}/complete`, { leaseToken: leased.body.tasks[0].leaseToken, result: { ok: true } });
    expect(done.status).toBe(200);
    expect(await unfinishedRows(pool, tenant)).toBe(2);
    const again = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 5 } }, { token: client });
    expect(again.status).toBe(201);
    expectQuotaRefusal(await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 6 } }, { token: client }), 3);

    // Cancelling frees a place too.
    expect((await api("POST", `/v1/tasks/${waiting.body.id}/cancel`, undefined, { token: client })).status).toBe(200);
    expect((await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 7 } }, { token: client })).status).toBe(201);
    expect(await unfinishedRows(pool, tenant)).toBe(3);
    expect(await allRows(pool)).toBe(5);
  });

  it("refuses a batch that would cross the quota as a whole, and accepts one that fits", async () => {
    const pool = freshPool("quota");
    const tenant = freshTenant();
    const client = await keyFor(tenant, ["client"]);
    expect((await api("PUT", `/v1/pools/${pool}/config`, { maxUnfinishedPerTenant: 3 })).status).toBe(200);
    expect((await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: client })).status).toBe(201);

    const tooMany = await api("POST", "/v1/tasks/batch", { tasks: [1, 2, 3].map((n) => ({ type: `${pool}.work`, payload: { n } })) }, { token: client });
    expectQuotaRefusal(tooMany, 3);
    expect(await unfinishedRows(pool, tenant)).toBe(1);
    expect(await allRows(pool)).toBe(1);

    const fits = await api("POST", "/v1/tasks/batch", { tasks: [1, 2].map((n) => ({ type: `${pool}.work`, payload: { n } })) }, { token: client });
    expect(fits.status).toBe(201);
    expect(fits.body.tasks).toHaveLength(2);
    expect(await unfinishedRows(pool, tenant)).toBe(3);
    expectQuotaRefusal(await api("POST", "/v1/tasks/batch", { tasks: [{ type: `${pool}.work` }] }, { token: client }), 3);
    expect(await allRows(pool)).toBe(3);
  });

  it("refuses a batch over several pools as a whole when one pool's part would cross the quota, committing none", async () => {
    const roomy = freshPool("quota");
    const full = freshPool("quota");
    const tenant = freshTenant();
    const client = await keyFor(tenant, ["client"]);
    expect((await api("PUT", `/v1/pools/${full}/config`, { maxUnfinishedPerTenant: 2 })).status).toBe(200);
    expect((await api("POST", "/v1/tasks", { type: `${full}.work`, idempotencyKey: "k" }, { token: client })).status).toBe(201);
    expect((await api("POST", "/v1/tasks", { type: `${roomy}.work` }, { token: client })).status).toBe(201);
    const batch = (fullPart: object[]) => api("POST", "/v1/tasks/batch", { tasks: [{ type: `${roomy}.work` }, ...fullPart] }, { token: client });
    // Two new tasks for the full pool: one too many, so the roomy pool gets nothing either.
    expectQuotaRefusal(await batch([{ type: `${full}.work` }, { type: `${full}.work` }]), 2);
    expect(await allRows(roomy)).toBe(1);
    expect(await allRows(full)).toBe(1);
    // A repeated idempotency key adds nothing, so this one fits in both.
    const fits = await batch([{ type: `${full}.work`, idempotencyKey: "k" }, { type: `${full}.work` }]);
    expect(fits.status).toBe(201);
    expect(await allRows(roomy)).toBe(2);
    expect(await allRows(full)).toBe(2);
  });

  it("counts each tenant on its own in a shared pool", async () => {
    const pool = freshPool("quota");
    const [ta, tb] = [freshTenant(), freshTenant()];
    const [a, b] = [await keyFor(ta, ["client"]), await keyFor(tb, ["client"])];
    expect((await api("PUT", `/v1/pools/${pool}/config`, { maxUnfinishedPerTenant: 2 })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: a })).status).toBe(201);
    expectQuotaRefusal(await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: a }), 2);
    // Tenant b starts from zero although a is at its quota, and stops at its own.
    for (let i = 0; i < 2; i++) expect((await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: b })).status).toBe(201);
    expectQuotaRefusal(await api("POST", "/v1/tasks", { type: `${pool}.work` }, { token: b }), 2);
    expect(await unfinishedRows(pool, ta)).toBe(2);
    expect(await unfinishedRows(pool, tb)).toBe(2);
    // Another pool without a quota is not affected by this one.
    expect((await api("POST", "/v1/tasks", { type: `${freshPool("other")}.work` }, { token: a })).status).toBe(201);
  });
});

// ---- mTLS ---------------------------------------------------------------------------------------------------

type TlsClientAuth = { certPresented: string; certVerified: string; certSubjectDN?: string; certFingerprintSHA256?: string };

const VERIFIED: TlsClientAuth = {
  certPresented: "1",
  certVerified: "SUCCESS",
  certSubjectDN: "CN=agent-1,O=DAA Mesh Test",
  certFingerprintSHA256: "a".repeat(64),
};

/**
 * Calls the Worker as `api()` does, with a `cf.tlsClientAuth` on the request: the object Cloudflare's edge
 * attaches after an mTLS handshake. workerd carries a RequestInit's `cf` to `request.cf` across the service
 * binding `exports.default`, so the Worker sees exactly this.
 */
async function agentCall(method: string, path: string, body: unknown, token: string, tls?: TlsClientAuth): Promise<ApiResponse> {
  const init: RequestInit<IncomingRequestCfProperties> = {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  };
  if (tls) init.cf = { tlsClientAuth: tls } as unknown as IncomingRequestCfProperties;
  const res = await exports.default.fetch(new Request(`https://mesh.test${path}`, init));
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

describe("pools that require a client certificate (requireClientCert)", () => {
  it("refuses every agent operation without a verified certificate, allows it with one, and leaves client routes alone", async () => {
    const pool = freshPool("mtls");
    const tenant = freshTenant("mtls");
    const client = await keyFor(tenant, ["client"]);
    const agent = await keyFor(tenant, ["agent"], pool);
    expect((await api("PUT", `/v1/pools/${pool}/config`, { requireClientCert: true })).body.requireClientCert).toBe(true);

    const refused = (res: ApiResponse) => {
      expectError(res, 403, "forbidden");
      expect(res.body.error.message).toContain("client certificate");
    };

    // Registration.
    refused(await agentCall("POST", `/v1/pools/${pool}/agents`, { agentId: "edge-1", maxConcurrency: 5 }, agent));
    expect((await api("GET", `/v1/pools/${pool}/agents`)).body.agents).toEqual([]);
    const registered = await agentCall("POST", `/v1/pools/${pool}/agents`, { agentId: "edge-1", maxConcurrency: 5 }, agent, VERIFIED);
    expect(registered.status).toBe(201);
    expect(registered.body.state).toBe("running");

    // Heartbeat.
    refused(await agentCall("POST", `/v1/pools/${pool}/agents/edge-1/heartbeat`, { load: { currentLoad: 0.5 } }, agent));
    expect((await agentCall("POST", `/v1/pools/${pool}/agents/edge-1/heartbeat`, { load: { currentLoad: 0.5 } }, agent, VERIFIED)).status).toBe(200);

    // Client routes need no certificate: submit and read.
    const submitted = [];
    for (let i = 0; i < 4; i++) {
      const res = await agentCall("POST", "/v1/tasks", { type: `${pool}.work`, payload: { i } }, client);
      expect(res.status).toBe(201);
      submitted.push(res.body.id as string);
    }
    const read = await agentCall("GET", `/v1/tasks/${submitted[0]}`, undefined, client);
    expect(read.status).toBe(200);
    expect(read.body.payload).toEqual({ i: 0 });

    // Lease.
    refused(await agentCall("POST", `/v1/pools/${pool}/agents/edge-1/lease`, { max: 4 }, agent));
    expect((await api("GET", `/v1/pools/${pool}`)).body.queue.leased).toBe(0);
    const leased = await agentCall("POST", `/v1/pools/${pool}/agents/edge-1/lease`, { max: 4 }, agent, VERIFIED);
    expect(leased.status).toBe(200);
    const tasks = leased.body.tasks as { id: string; leaseToken: string }[];
    expect(tasks.map((t) => t.id)).toEqual(submitted);
    const [t0, t1, t2, t3] = tasks as [(typeof tasks)[0], (typeof tasks)[0], (typeof tasks)[0], (typeof tasks)[0]];

    // Complete, fail and extend: refused without, and the task stays leased.
    refused(await agentCall("POST", `/v1/tasks/${t0.id}/complete`, { leaseToken: t0.leaseToken, result: 1 }, agent));
    refused(await agentCall("POST", `/v1/tasks/${t1.id}/fail`, { leaseToken: t1.leaseToken, error: { message: "x" } }, agent));
    refused(await agentCall("POST", `/v1/tasks/${t2.id}/extend`, { leaseToken: t2.leaseToken, extendMs: 60_000 }, agent));
    for (const t of tasks) expect((await api("GET", `/v1/tasks/${t.id}`)).body).toMatchObject({ status: "leased", attempts: 1, result: null, error: null });

    expect((await agentCall("POST", `/v1/tasks/${t0.id}/complete`, { leaseToken: t0.leaseToken, result: 1 }, agent, VERIFIED)).body.status).toBe("succeeded");
    expect((await agentCall("POST", `/v1/tasks/${t1.id}/fail`, { leaseToken: t1.leaseToken, error: { message: "x" }, retryable: false }, agent, VERIFIED)).body.status).toBe(
      "dead",
    );
    expect((await agentCall("POST", `/v1/tasks/${t2.id}/extend`, { leaseToken: t2.leaseToken, extendMs: 60_000 }, agent, VERIFIED)).status).toBe(200);

    // Settle: the whole request is refused without a certificate, and nothing in it is applied.
    const items = [
      { action: "complete", id: t2.id, leaseToken: t2.leaseToken, result: 2 },
      { action: "complete", id: t3.id, leaseToken: t3.leaseToken, result: 3 },
    ];
    refused(await agentCall("POST", "/v1/tasks/settle", { items }, agent));
    for (const t of [t2, t3]) expect((await api("GET", `/v1/tasks/${t.id}`)).body.status).toBe("leased");
    const settled = await agentCall("POST", "/v1/tasks/settle", { items }, agent, VERIFIED);
    expect(settled.status).toBe(200);
    expect(settled.body.results).toEqual([
      { id: t2.id, status: "succeeded" },
      { id: t3.id, status: "succeeded" },
    ]);

    // Reading the results is a client route again.
    expect((await agentCall("GET", `/v1/tasks/${t3.id}`, undefined, client)).body.result).toBe(3);
  });

  it("refuses a certificate that was not verified or not presented, whatever the credential", async () => {
    const pool = freshPool("mtls");
    const tenant = freshTenant("mtls");
    const agent = await keyFor(tenant, ["agent"], pool);
    const operator = await keyFor(tenant, ["operator"]);
    expect((await api("PUT", `/v1/pools/${pool}/config`, { requireClientCert: true })).status).toBe(200);

    const bad: TlsClientAuth[] = [
      { certPresented: "1", certVerified: "FAILED:self signed certificate" },
      { certPresented: "1", certVerified: "FAILED:certificate has expired" },
      { certPresented: "0", certVerified: "NONE" },
      { certPresented: "0", certVerified: "SUCCESS" },
      { certPresented: "1", certVerified: "success" },
    ];
    for (const token of [agent, operator]) {
      for (const tls of bad) {
        const res = await agentCall("POST", `/v1/pools/${pool}/agents`, { agentId: "edge-2" }, token, tls);
        expectError(res, 403, "forbidden");
      }
    }
    // The super-admin key is no exception either.
    expectError(await api("POST", `/v1/pools/${pool}/agents`, { agentId: "edge-2" }), 403, "forbidden");
    expect((await api("GET", `/v1/pools/${pool}/agents`)).body.agents).toEqual([]);

    // Switching the requirement off again lets the same request through without a certificate.
    expect((await api("PUT", `/v1/pools/${pool}/config`, { requireClientCert: false })).body.requireClientCert).toBe(false);
    expect((await agentCall("POST", `/v1/pools/${pool}/agents`, { agentId: "edge-2" }, agent)).status).toBe(201);
  });

  it("settle across pools: items of the pool that requires a certificate are refused as forbidden, the others apply", async () => {
    const strict = freshPool("mtls");
    const plain = freshPool("plain");
    expect((await api("PUT", `/v1/pools/${strict}/config`, { requireClientCert: true })).status).toBe(200);
    // The shared fleet (super-admin key) registers with a certificate in the strict pool.
    expect((await agentCall("POST", `/v1/pools/${strict}/agents`, { agentId: "w" }, ADMIN, VERIFIED)).status).toBe(201);
    expect((await api("POST", `/v1/pools/${plain}/agents`, { agentId: "w" })).status).toBe(201);
    const s = (await api("POST", "/v1/tasks", { type: `${strict}.work` })).body;
    const p = (await api("POST", "/v1/tasks", { type: `${plain}.work` })).body;
    const [ls] = (await agentCall("POST", `/v1/pools/${strict}/agents/w/lease`, {}, ADMIN, VERIFIED)).body.tasks;
    const [lp] = (await api("POST", `/v1/pools/${plain}/agents/w/lease`, {})).body.tasks;
    const res = await api("POST", "/v1/tasks/settle", {
      items: [
        { action: "complete", id: s.id, leaseToken: ls.leaseToken, result: "s" },
        { action: "complete", id: p.id, leaseToken: lp.leaseToken, result: "p" },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      { id: s.id, error: { code: "forbidden", message: `pool ${strict} requires agents to present a client certificate that Cloudflare verified` } },
      { id: p.id, status: "succeeded" },
    ]);
    expect((await api("GET", `/v1/tasks/${s.id}`)).body.status).toBe("leased");
    expect((await api("GET", `/v1/tasks/${p.id}`)).body.result).toBe("p");
  });

  it("does not touch pools without the requirement", async () => {
    const pool = freshPool("plain");
    const agent = await keyFor(freshTenant("mtls"), ["agent"], pool);
    expect((await agentCall("POST", `/v1/pools/${pool}/agents`, { agentId: "edge-3" }, agent)).status).toBe(201);
    expect((await agentCall("POST", `/v1/pools/${pool}/agents/edge-3/heartbeat`, {}, agent, { certPresented: "1", certVerified: "FAILED:x" })).status).toBe(200);
  });
});
