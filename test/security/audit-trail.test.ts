import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { GENESIS_HASH, recordHash, type AuditRecord } from "../../lib/audit/chain";
import { api, expectError, freshPool, type ApiResponse } from "../helpers";

const IP = "203.0.113.7";
const FROM = { headers: { "cf-connecting-ip": IP } };

let tenants = 0;
function freshTenant(): string {
  tenants += 1;
  return `aud-${tenants}-${Math.floor(performance.now())}`;
}

/** Every record of a tenant's chain, straight from its Durable Object (reading it this way records nothing). */
async function chain(tenant: string): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let cursor: number | null = null;
  do {
    const page: { records: AuditRecord[]; cursor: number | null } = await env.AUDIT.getByName(tenant).list(1000, cursor);
    out.push(...page.records);
    cursor = page.cursor;
  } while (cursor !== null);
  return out;
}

/** What a record says, without its position, time and hashes. */
const gist = ({ actor, action, target, outcome, ip }: AuditRecord) => ({ actor, action, target, outcome, ip });

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function createKey(tenant: string, roles: string[], token?: string): Promise<{ id: string; key: string }> {
  const res = await api("POST", `/v1/tenants/${tenant}/keys`, { name: roles.join("+"), roles }, { ...FROM, token });
  if (res.status !== 201) throw new Error(`key creation answered ${res.status}: ${JSON.stringify(res.body)}`);
  return { id: res.body.id, key: res.body.key };
}

/** Pages through `GET /v1/audit` with the given limit, following cursors; answers the records and the page count. */
async function pageAll(query: string, limit: number, token?: string): Promise<{ records: any[]; pages: number }> {
  const records: any[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res: ApiResponse = await api("GET", `/v1/audit?${query}&limit=${limit}${cursor === null ? "" : `&cursor=${cursor}`}`, undefined, { token });
    expect(res.status).toBe(200);
    expect(res.body.records.length).toBeLessThanOrEqual(limit);
    records.push(...res.body.records);
    cursor = res.body.cursor;
    pages += 1;
    if (cursor !== null) expect(cursor).toBe(String(res.body.records.at(-1).seq));
  } while (cursor !== null);
  return { records, pages };
}

describe("the audit trail of a tenant, through the HTTP API", () => {
  const tenant = freshTenant();
  const pool = freshPool("aud");
  let started = 0;
  let finished = 0;
  let admin = { id: "", key: "" };
  let client = { id: "", key: "" };
  let auditor = { id: "", key: "" };
  const ids: Record<string, string> = {};
  let batchIds: string[] = [];
  let recorded: AuditRecord[] = [];

  beforeAll(async () => {
    started = Date.now();
    // The super-admin key creates the tenant's admin key; the tenant's admin does the rest.
    admin = await createKey(tenant, ["admin"]);
    const as = (token: string) => ({ ...FROM, token });
    const A = as(admin.key);
    client = await createKey(tenant, ["client"], admin.key);
    auditor = await createKey(tenant, ["auditor"], admin.key);
    expect((await api("GET", `/v1/tenants/${tenant}/keys`, undefined, A)).body.keys).toHaveLength(3);

    const token = await api("POST", "/v1/auth/token", { apiKey: client.key }, { ...FROM, token: null });
    expect(token.status).toBe(200);

    expect((await api("POST", `/v1/pools/${pool}/agents`, { agentId: "aud-1", maxConcurrency: 5 }, A)).status).toBe(201);
    // An empty lease is not worth a record.
    expect((await api("POST", `/v1/pools/${pool}/agents/aud-1/lease`, { max: 5 }, A)).body.tasks).toEqual([]);

    const single = await api("POST", "/v1/tasks", { type: `${pool}.work`, payload: { n: 0 }, maxAttempts: 1 }, as(token.body.token));
    expect(single.status).toBe(201);
    ids.single = single.body.id;
    const batch = await api("POST", "/v1/tasks/batch", { tasks: [1, 2, 3].map((n) => ({ type: `${pool}.work`, payload: { n } })) }, as(client.key));
    expect(batch.status).toBe(201);
    batchIds = batch.body.tasks.map((t: { id: string }) => t.id);
    ids.cancelled = batchIds[2]!;
    expect((await api("POST", `/v1/tasks/${ids.cancelled}/cancel`, undefined, as(client.key))).status).toBe(200);

    const leased = (await api("POST", `/v1/pools/${pool}/agents/aud-1/lease`, { max: 2 }, A)).body.tasks as { id: string; leaseToken: string }[];
    expect(leased.map((t) => t.id)).toEqual([ids.single, batchIds[0]]);
    const [toFail, toComplete] = leased as [(typeof leased)[0], (typeof leased)[0]];
    expect((await api("POST", `/v1/tasks/${toComplete.id}/complete`, { leaseToken: toComplete.leaseToken, result: { ok: 1 } }, A)).status).toBe(200);
    const failed = await api("POST", `/v1/tasks/${toFail.id}/fail`, { leaseToken: toFail.leaseToken, error: { message: "boom" }, retryable: false }, A);
    expect(failed.body.status).toBe("dead");
    expect((await api("POST", `/v1/pools/${pool}/dlq/redrive`, { ids: [toFail.id] }, A)).body.redriven).toBe(1);

    expect((await api("PATCH", `/v1/pools/${pool}/agents/aud-1`, { state: "paused" }, A)).status).toBe(200);
    expect((await api("DELETE", `/v1/pools/${pool}/agents/aud-1`, undefined, A)).status).toBe(200);
    // Pool-wide configuration is the operators' (API.md, "Who may change what"): a tenant's admin is refused too.
    expectError(await api("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 6000 }, A), 403, "forbidden");
    expectError(await api("PUT", `/v1/pools/${pool}/config`, { heartbeatIntervalMs: 7000 }, as(client.key)), 403, "forbidden");

    expect((await api("DELETE", `/v1/tenants/${tenant}/keys/${client.id}`, undefined, A)).status).toBe(200);
    // The revoked key fails to authenticate, at a route and at the token exchange.
    expectError(await api("GET", "/v1/pools", undefined, as(client.key)), 401, "unauthorized");
    expectError(await api("POST", "/v1/auth/token", { apiKey: client.key }, { ...FROM, token: null }), 401, "unauthorized");
    finished = Date.now();
    recorded = await chain(tenant);
  });

  it("records each action in the acting tenant's chain with actor, action, target, outcome and ip", async () => {
    const byAdmin = `key:${admin.id}`;
    const byClient = `key:${client.id}`;
    expect(recorded.map(gist)).toEqual([
      // The super-admin created this tenant's admin key: recorded in its own chain and in this one.
      { actor: "admin-key", action: "key.create", target: `key ${admin.id} (admin)`, outcome: "success", ip: IP },
      { actor: byAdmin, action: "key.create", target: `key ${client.id} (client)`, outcome: "success", ip: IP },
      { actor: byAdmin, action: "key.create", target: `key ${auditor.id} (auditor)`, outcome: "success", ip: IP },
      { actor: byAdmin, action: "key.list", target: tenant, outcome: "success", ip: IP },
      { actor: byClient, action: "token.issue", target: `token for key ${client.id}`, outcome: "success", ip: IP },
      { actor: byAdmin, action: "agent.register", target: `${pool}/aud-1`, outcome: "success", ip: IP },
      { actor: `token:${client.id}`, action: "task.submit", target: ids.single, outcome: "success", ip: IP },
      { actor: byClient, action: "task.submit_batch", target: `3 tasks sha256:${await sha256Hex(batchIds.join("\n"))}`, outcome: "success", ip: IP },
      { actor: byClient, action: "task.cancel", target: ids.cancelled, outcome: "success", ip: IP },
      { actor: byAdmin, action: "task.lease", target: `${pool}/aud-1: 2 tasks`, outcome: "success", ip: IP },
      { actor: byAdmin, action: "task.complete", target: batchIds[0], outcome: "success", ip: IP },
      { actor: byAdmin, action: "task.fail", target: ids.single, outcome: "success", ip: IP },
      { actor: byAdmin, action: "dlq.redrive", target: pool, outcome: "success", ip: IP },
      { actor: byAdmin, action: "agent.state", target: `${pool}/aud-1 -> paused`, outcome: "success", ip: IP },
      { actor: byAdmin, action: "agent.delete", target: `${pool}/aud-1`, outcome: "success", ip: IP },
      { actor: byAdmin, action: "pool.config", target: pool, outcome: "forbidden", ip: IP },
      { actor: byClient, action: "pool.config", target: pool, outcome: "forbidden", ip: IP },
      { actor: byAdmin, action: "key.revoke", target: `${tenant}/${client.id}`, outcome: "success", ip: IP },
    ]);
  });

  it("numbers, times and hash-chains the records", () => {
    expect(recorded.map((r) => r.seq)).toEqual(recorded.map((_, i) => i + 1));
    let prev = GENESIS_HASH;
    let lastAt = started;
    for (const r of recorded) {
      expect(r.prevHash).toBe(prev);
      expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(r.hash).toBe(recordHash(r.seq, r, r.prevHash));
      expect(r.at).toBeGreaterThanOrEqual(lastAt);
      expect(r.at).toBeLessThanOrEqual(finished);
      prev = r.hash;
      lastAt = r.at;
    }
  });

  it("records what the super-admin key does in the chain of tenant default, the tenant it acts as (and the tenant whose keys it changed)", async () => {
    const mine = (await chain("default")).filter((r) => r.target === `key ${admin.id} (admin)`);
    expect(mine.map(gist)).toEqual([{ actor: "admin-key", action: "key.create", target: `key ${admin.id} (admin)`, outcome: "success", ip: IP }]);
  });

  it("records failed authentications in the _system chain, which only the super-admin reads", async () => {
    const system = await pageAll("tenant=_system", 1000);
    const mine = system.records.filter((r) => r.actor === `key:${client.id}`);
    expect(mine.map(({ actor, action, target, outcome, ip }) => ({ actor, action, target, outcome, ip }))).toEqual([
      { actor: `key:${client.id}`, action: "auth.failed", target: "GET /v1/pools", outcome: "the credential is not valid or was revoked", ip: IP },
      { actor: `key:${client.id}`, action: "token.issue", target: "POST /v1/auth/token", outcome: "unauthorized", ip: IP },
    ]);
    for (const r of mine) expect(Date.parse(r.at)).toBeGreaterThanOrEqual(started);
    // Nothing of the failures reached the tenant's own chain.
    expect(recorded.filter((r) => r.outcome !== "success" && r.outcome !== "forbidden")).toEqual([]);
    // The super-admin reads _system in full: the records are chained like any other.
    expect((await api("GET", "/v1/audit/verify?tenant=_system")).body).toMatchObject({ ok: true });
  });

  it("presents the same records over HTTP and pages through them with the cursor", async () => {
    const full = await api("GET", `/v1/audit?tenant=${tenant}&limit=1000`);
    expect(full.status).toBe(200);
    expect(full.body.cursor).toBeNull();
    expect(full.body.records).toEqual(
      recorded.map((r) => ({ seq: r.seq, at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, target: r.target, outcome: r.outcome, ip: r.ip, prevHash: r.prevHash, hash: r.hash })),
    );
    const paged = await pageAll(`tenant=${tenant}`, 4);
    expect(paged.pages).toBe(Math.ceil(recorded.length / 4));
    expect(paged.records).toEqual(full.body.records);
    // A cursor in the middle answers the records after it.
    const after = await api("GET", `/v1/audit?tenant=${tenant}&limit=3&cursor=10`);
    expect(after.body.records.map((r: { seq: number }) => r.seq)).toEqual([11, 12, 13]);
    expect(after.body.cursor).toBe("13");
    expectError(await api("GET", `/v1/audit?tenant=${tenant}&cursor=abc`), 400, "invalid_request");
    // The super-admin's reads went to its own chain, not this one.
    expect(await chain(tenant)).toHaveLength(recorded.length);
  });

  it("lets an auditor key read its own tenant only, and records the reads", async () => {
    const own = await api("GET", "/v1/audit?limit=1000", undefined, { ...FROM, token: auditor.key });
    expect(own.status).toBe(200);
    expect(own.body.records.map((r: { seq: number }) => r.seq)).toEqual(recorded.map((r) => r.seq));
    const other = freshTenant();
    await createKey(other, ["client"]);
    expectError(await api("GET", `/v1/audit?tenant=${other}`, undefined, { ...FROM, token: auditor.key }), 404, "not_found");
    expectError(await api("GET", `/v1/audit/verify?tenant=${other}`, undefined, { ...FROM, token: auditor.key }), 404, "not_found");
    // Neither the tenant's auditor nor its admin sees _system (as if it did not exist).
    expectError(await api("GET", "/v1/audit?tenant=_system", undefined, { ...FROM, token: auditor.key }), 404, "not_found");
    expectError(await api("GET", "/v1/audit/verify?tenant=_system", undefined, { ...FROM, token: admin.key }), 404, "not_found");
    // Only the bootstrap key makes operator keys (API.md): the tenant's admin is refused.
    expectError(await api("POST", `/v1/tenants/${tenant}/keys`, { name: "operator", roles: ["operator"] }, { ...FROM, token: admin.key }), 403, "forbidden");
    const operator = await createKey(tenant, ["operator"]);
    expectError(await api("GET", "/v1/audit", undefined, { ...FROM, token: operator.key }), 403, "forbidden");
    const after = (await chain(tenant)).slice(recorded.length);
    expect(after.map(gist)).toEqual([
      { actor: `key:${auditor.id}`, action: "audit.read", target: `audit log ${tenant}`, outcome: "success", ip: IP },
      { actor: `key:${auditor.id}`, action: "audit.read", target: `audit log ${other}`, outcome: "not_found", ip: IP },
      { actor: `key:${auditor.id}`, action: "audit.verify", target: `audit log ${other}`, outcome: "not_found", ip: IP },
      { actor: `key:${auditor.id}`, action: "audit.read", target: "audit log _system", outcome: "not_found", ip: IP },
      { actor: `key:${admin.id}`, action: "audit.verify", target: "audit log _system", outcome: "not_found", ip: IP },
      { actor: `key:${admin.id}`, action: "key.create", target: tenant, outcome: "forbidden", ip: IP },
      { actor: "admin-key", action: "key.create", target: `key ${operator.id} (operator)`, outcome: "success", ip: IP },
      { actor: `key:${operator.id}`, action: "audit.read", target: "/v1/audit", outcome: "forbidden", ip: IP },
    ]);
  });

  it("verifies the chain, and finds the record that was changed behind its back", async () => {
    const count = (await chain(tenant)).length;
    expect((await api("GET", `/v1/audit/verify?tenant=${tenant}`)).body).toEqual({ ok: true, records: count });
    // The auditor's own verify sees the same chain (its record is appended after the answer).
    expect((await api("GET", "/v1/audit/verify", undefined, { token: auditor.key })).body).toEqual({ ok: true, records: count });

    const forbidden = recorded.find((r) => r.outcome === "forbidden")!;
    const tamper = (sql: string, ...args: (string | number)[]) =>
      runInDurableObject(env.AUDIT.getByName(tenant), (_, state) => {
        state.storage.sql.exec(sql, ...args);
      });
    await tamper("UPDATE records SET outcome = 'success' WHERE seq = ?", forbidden.seq);
    expect((await api("GET", `/v1/audit/verify?tenant=${tenant}`)).body).toEqual({ ok: false, brokenAt: forbidden.seq });
    expect((await api("GET", "/v1/audit/verify", undefined, { token: auditor.key })).body).toEqual({ ok: false, brokenAt: forbidden.seq });
    await tamper("UPDATE records SET outcome = 'forbidden' WHERE seq = ?", forbidden.seq);
    // Restored, the chain is whole again: plus the auditor's two verify calls.
    expect((await api("GET", `/v1/audit/verify?tenant=${tenant}`)).body).toEqual({ ok: true, records: count + 2 });

    // Rewriting a record's own hash to match its new content breaks the link of the next record instead.
    const third = recorded[2]!;
    const forged = { ...third, ip: "198.51.100.1" };
    await tamper("UPDATE records SET ip = ?, hash = ? WHERE seq = ?", forged.ip, recordHash(third.seq, forged, third.prevHash), third.seq);
    expect((await api("GET", `/v1/audit/verify?tenant=${tenant}`)).body).toEqual({ ok: false, brokenAt: third.seq + 1 });
    // Removing a record breaks the chain where it was.
    await tamper("UPDATE records SET ip = ?, hash = ? WHERE seq = ?", third.ip!, third.hash, third.seq);
    await tamper("DELETE FROM records WHERE seq = ?", 5);
    expect((await api("GET", `/v1/audit/verify?tenant=${tenant}`)).body).toEqual({ ok: false, brokenAt: 6 });
  });
});

describe("acts on another tenant's task", () => {
  it("are recorded in the actor's chain and in the chain of the task's tenant", async () => {
    const owner = freshTenant();
    const fleet = freshTenant();
    const pool = freshPool("aud-x");
    const client = await createKey(owner, ["client"]);
    const operator = await createKey(fleet, ["operator"]);
    const submitted = async () => (await api("POST", "/v1/tasks", { type: `${pool}.work` }, { ...FROM, token: client.key })).body.id as string;
    // The bootstrap key cancels the owner's task.
    const cancelled = await submitted();
    expect((await api("POST", `/v1/tasks/${cancelled}/cancel`, undefined, FROM)).status).toBe(200);
    // A shared-fleet agent of another tenant completes one and fails one.
    const [done, failed] = [await submitted(), await submitted()];
    expect((await api("POST", `/v1/pools/${pool}/agents`, { agentId: "fleet-1", maxConcurrency: 5 }, { ...FROM, token: operator.key })).status).toBe(201);
    const leased = (await api("POST", `/v1/pools/${pool}/agents/fleet-1/lease`, { max: 2 }, { ...FROM, token: operator.key })).body.tasks as { id: string; leaseToken: string }[];
    expect(leased.map((t) => t.id)).toEqual([done, failed]);
    expect((await api("POST", `/v1/tasks/${done}/complete`, { leaseToken: leased[0]!.leaseToken }, { ...FROM, token: operator.key })).status).toBe(200);
    expect((await api("POST", `/v1/tasks/${failed}/fail`, { leaseToken: leased[1]!.leaseToken, retryable: false }, { ...FROM, token: operator.key })).status).toBe(200);
    // A refused act (the task, finished, is no longer the fleet's to see) stays in the actor's chain only.
    expectError(await api("POST", `/v1/tasks/${done}/complete`, { leaseToken: leased[0]!.leaseToken }, { ...FROM, token: operator.key }), 404, "not_found");

    const byOperator = `key:${operator.id}`;
    const taskActs = (records: AuditRecord[]) => records.filter((r) => r.action.startsWith("task.") && r.action !== "task.submit" && r.action !== "task.lease").map(gist);
    expect(taskActs(await chain(owner))).toEqual([
      { actor: "admin-key", action: "task.cancel", target: cancelled, outcome: "success", ip: IP },
      { actor: byOperator, action: "task.complete", target: done, outcome: "success", ip: IP },
      { actor: byOperator, action: "task.fail", target: failed, outcome: "success", ip: IP },
    ]);
    expect(taskActs(await chain(fleet))).toEqual([
      { actor: byOperator, action: "task.complete", target: done, outcome: "success", ip: IP },
      { actor: byOperator, action: "task.fail", target: failed, outcome: "success", ip: IP },
      { actor: byOperator, action: "task.complete", target: done, outcome: "not_found", ip: IP },
    ]);
    expect(taskActs(await chain("default")).filter((r) => r.target === cancelled)).toEqual([
      { actor: "admin-key", action: "task.cancel", target: cancelled, outcome: "success", ip: IP },
    ]);
  });
});

/** An agent's end of a WebSocket, reduced to what these tests need: send, and the next message of a type. */
async function openAgentSocket(pool: string, agentId: string, token: string) {
  const res = await exports.default.fetch(
    new Request(`https://mesh.test/v1/pools/${pool}/agents/${agentId}/connect?token=${encodeURIComponent(token)}`, { headers: { upgrade: "websocket" } }),
  );
  if (res.status !== 101 || !res.webSocket) throw new Error(`connect answered ${res.status}: ${await res.text()}`);
  const ws = res.webSocket;
  const inbox: any[] = [];
  ws.accept();
  ws.addEventListener("message", (e) => {
    const msg = JSON.parse(e.data as string);
    inbox.push(...(msg.type === "batch" ? msg.messages : [msg]));
  });
  return {
    send: (msg: unknown) => ws.send(JSON.stringify(msg)),
    async next(type: string): Promise<any> {
      const deadline = Date.now() + 3000;
      for (;;) {
        const i = inbox.findIndex((m) => m.type === type);
        if (i >= 0) return inbox.splice(i, 1)[0];
        if (Date.now() > deadline) throw new Error(`no ${type} message`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => ws.close(1000, "test done"),
  };
}

describe("batches that touch other tenants' tasks", () => {
  it("give each of those tenants a record naming its own part, over HTTP and over the WebSocket", async () => {
    const [ownerA, ownerB, fleet] = [freshTenant(), freshTenant(), freshTenant()];
    const pool = freshPool("aud-batch");
    const [clientA, clientB] = [await createKey(ownerA, ["client"]), await createKey(ownerB, ["client"])];
    const operator = await createKey(fleet, ["operator"]);
    const submit = async (key: string) => (await api("POST", "/v1/tasks", { type: `${pool}.work` }, { ...FROM, token: key })).body.id as string;
    const [a1, a2, b1] = [await submit(clientA.key), await submit(clientA.key), await submit(clientB.key)];

    // HTTP: the shared agent leases all three, then settles them and one item it cannot (refused: no tenant's).
    expect((await api("POST", `/v1/pools/${pool}/agents`, { agentId: "fleet-1", maxConcurrency: 5 }, { ...FROM, token: operator.key })).status).toBe(201);
    const leased = (await api("POST", `/v1/pools/${pool}/agents/fleet-1/lease`, { max: 3 }, { ...FROM, token: operator.key })).body.tasks as { id: string; leaseToken: string }[];
    // Fair scheduling serves the two tenants in turn (docs/scheduling.md), FIFO within each.
    const ids = leased.map((t) => t.id);
    expect([...ids].sort()).toEqual([a1, a2, b1].sort());
    expect(ids.indexOf(a1)).toBeLessThan(ids.indexOf(a2));
    expect(ids[1] === b1 || ids[0] === b1).toBe(true);
    const token = (id: string) => leased.find((t) => t.id === id)!.leaseToken;
    const items = [
      { action: "complete", id: a1, leaseToken: token(a1), result: 1 },
      { action: "fail", id: a2, leaseToken: token(a2), retryable: false },
      { action: "extend", id: b1, leaseToken: token(b1) },
      { action: "complete", id: a1, leaseToken: "stale-token-of-nobody" },
    ];
    const settled = await api("POST", "/v1/tasks/settle", { items }, { ...FROM, token: operator.key });
    expect(settled.status).toBe(200);
    // The answer is the contract's: no tenant in it.
    expect(settled.body.results.map((r: object) => Object.keys(r).sort())).toEqual([["id", "status"], ["id", "status"], ["id", "leaseExpiresAt", "status"], ["error", "id"]]);

    // WebSocket: another shared agent gets B's next task pushed and completes it.
    const b2 = await submit(clientB.key);
    expect((await api("POST", `/v1/pools/${pool}/agents`, { agentId: "fleet-2", maxConcurrency: 5 }, { ...FROM, token: operator.key })).status).toBe(201);
    const ws = await openAgentSocket(pool, "fleet-2", operator.key);
    await ws.next("hello");
    ws.send({ type: "ready", credits: 1 });
    const pushed = (await ws.next("task")).task;
    expect(pushed.id).toBe(b2);
    ws.send({ type: "complete", id: b2, leaseToken: pushed.leaseToken, result: 2 });
    expect(await ws.next("ack")).toMatchObject({ id: b2, status: "succeeded" });
    ws.close();

    const byOperator = `key:${operator.id}`;
    const batchActs = async (tenant: string, expected: number) => {
      // Socket records go to the audit log a moment after the traffic.
      const deadline = Date.now() + 3000;
      for (;;) {
        const records = (await chain(tenant)).filter((r) => r.action === "task.lease" || r.action === "task.settle").map(gist);
        if (records.length >= expected || Date.now() > deadline) return records;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const ws1 = async (ids: string[]) => `fleet-2 (websocket): ${ids.length} tasks sha256:${await sha256Hex(ids.join("\n"))}`;
    expect(await batchActs(ownerA, 2)).toEqual([
      { actor: byOperator, action: "task.lease", target: `${pool}/fleet-1: 2 tasks`, outcome: "success", ip: IP },
      { actor: byOperator, action: "task.settle", target: `2 tasks sha256:${await sha256Hex([a1, a2].join("\n"))}`, outcome: "success", ip: IP },
    ]);
    expect(await batchActs(ownerB, 4)).toEqual([
      { actor: byOperator, action: "task.lease", target: `${pool}/fleet-1: 1 tasks`, outcome: "success", ip: IP },
      { actor: byOperator, action: "task.settle", target: `1 tasks sha256:${await sha256Hex(b1)}`, outcome: "success", ip: IP },
      { actor: byOperator, action: "task.lease", target: await ws1([b2]), outcome: "success", ip: null },
      { actor: byOperator, action: "task.settle", target: await ws1([b2]), outcome: "success", ip: null },
    ]);
    // The actor's chain names each whole batch once.
    const fleetActs = await batchActs(fleet, 4);
    expect(fleetActs.map((r) => [r.action, r.target.replace(/sha256:\w+/, "sha256:…")])).toEqual([
      ["task.lease", `${pool}/fleet-1: 3 tasks`],
      ["task.settle", "4 tasks sha256:…"],
      ["task.lease", "fleet-2 (websocket): 1 tasks sha256:…"],
      ["task.settle", "fleet-2 (websocket): 1 tasks sha256:…"],
    ]);
  });
});
