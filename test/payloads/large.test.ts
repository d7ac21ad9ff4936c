// Payloads and results over 128 KiB (docs/payloads.md): kept in R2 as ciphertext, referenced from the row, returned
// inline over HTTP and WebSocket, fetched by the agent when a frame cannot hold them, deleted with their task.
import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encryptField, keyringFromEnv } from "../../lib/security/keyring";
import { ADMIN_KEY, api, expectError, freshPool, lease, PoolClock, register, submit } from "../helpers";

const KIB = 1024;
const MIB = 1024 * KIB;
const DAY = 24 * 3600 * 1000;

/** A payload of about `bytes` of JSON with a marker that must never be stored in clear. */
function bigValue(bytes: number, marker: string): { marker: string; fill: string } {
  return { marker, fill: `${marker}:${"x".repeat(bytes)}` };
}

/** Something that shows up in the plaintext of `bigValue` and cannot appear in base64url by chance. */
const PLAIN_RUN = "x".repeat(64);

async function rawRow(pool: string, id: string): Promise<{ tenant: string; payload: string; result: string | null }> {
  return runInDurableObject(env.POOL.getByName(pool), (_, state) =>
    state.storage.sql.exec<{ tenant: string; payload: string; result: string | null }>("SELECT tenant, payload, result FROM tasks WHERE id = ?", id).one(),
  );
}

async function setColumn(pool: string, id: string, column: "payload" | "result", value: string): Promise<void> {
  await runInDurableObject(env.POOL.getByName(pool), (_, state) => {
    state.storage.sql.exec(`UPDATE tasks SET ${column} = ? WHERE id = ?`, value, id);
  });
}

async function blobRows(pool: string): Promise<number> {
  return runInDurableObject(env.POOL.getByName(pool), (_, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM blob_deletes").one().n);
}

/** The R2 key a stored field refers to (`r1.<bytes>.<key>`); fails on anything else. */
function keyOf(stored: string | null, field: "payload" | "result", tenant: string): string {
  const m = /^r1\.(\d+)\.(.+)$/.exec(stored ?? "");
  expect(m, String(stored).slice(0, 80)).not.toBeNull();
  expect(m![2]!.startsWith(`${field}/${tenant}/`)).toBe(true);
  return m![2]!;
}

/** The object is an `e1.` envelope (the tenant's AES-GCM) with nothing of the plaintext in it. */
async function expectCiphertext(key: string, secrets: readonly string[]): Promise<void> {
  const object = await env.BLOBS.get(key);
  expect(object, key).not.toBeNull();
  const text = await object!.text();
  expect(text).toMatch(/^e1\.\d+\.[A-Za-z0-9_-]+$/);
  for (const secret of [...secrets, PLAIN_RUN]) expect(text.includes(secret), secret).toBe(false);
}

async function keysUnder(prefix: string): Promise<Set<string>> {
  const keys = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await env.BLOBS.list({ prefix, cursor });
    for (const o of page.objects) keys.add(o.key);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** An agent's end of the WebSocket that keeps each frame's size as well as its messages. */
class RawSocket {
  readonly frames: number[] = [];
  private readonly inbox: any[] = [];

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (e) => {
      const text = e.data as string;
      this.frames.push(new TextEncoder().encode(text).length);
      const msg = JSON.parse(text);
      this.inbox.push(...(msg.type === "batch" ? msg.messages : [msg]));
    });
  }

  send(msg: unknown): void {
    this.ws.send(JSON.stringify(msg));
  }

  async next(type: string, ms = 10_000): Promise<any> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.type === type);
      if (i >= 0) return this.inbox.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`no ${type} message within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function connect(pool: string, agentId: string): Promise<RawSocket> {
  const res = await exports.default.fetch(new Request(`https://mesh.test/v1/pools/${pool}/agents/${agentId}/connect?token=${encodeURIComponent(ADMIN_KEY)}`, { headers: { upgrade: "websocket" } }));
  if (res.status !== 101 || !res.webSocket) throw new Error(`connect answered ${res.status}: ${await res.text()}`);
  const socket = new RawSocket(res.webSocket);
  await socket.next("hello");
  return socket;
}

describe("large payloads and results over HTTP", () => {
  it("keeps a 300 KiB payload and result in R2 as ciphertext, referenced from the row, and answers them inline", async () => {
    const pool = freshPool("big");
    const payload = bigValue(300 * KIB, "PAYLOAD-SECRET-7f3a");
    const task = await submit(pool, { payload });
    expect(task.payload).toEqual(payload);
    expect(task.payloadOmitted).toBeUndefined();

    const row = await rawRow(pool, task.id);
    const payloadKey = keyOf(row.payload, "payload", row.tenant);
    await expectCiphertext(payloadKey, [payload.marker]);
    expect(row.payload.length).toBeLessThan(200);

    await register(pool, "a1");
    const [leased] = await lease(pool, "a1");
    expect(leased.id).toBe(task.id);
    expect(leased.payload).toEqual(payload);
    expect(leased.payloadOmitted).toBeUndefined();

    const result = bigValue(300 * KIB, "RESULT-SECRET-91bd");
    const done = await api("POST", `/v1/tasks/${task.id}/complete`, { leaseToken: leased.leaseToken, result });
    expect(done.status).toBe(200);
    expect(done.body.result).toEqual(result);
    const after = await rawRow(pool, task.id);
    await expectCiphertext(keyOf(after.result, "result", row.tenant), [result.marker]);

    const got = await api("GET", `/v1/tasks/${task.id}`);
    expect(got.body.payload).toEqual(payload);
    expect(got.body.result).toEqual(result);
    const listed = await api("GET", `/v1/pools/${pool}/tasks`);
    expect(listed.body.tasks[0].result).toEqual(result);
  });

  it("keeps a small payload and result inline in the row, and writes nothing to R2 for them", async () => {
    const pool = freshPool("small");
    const before = await keysUnder("payload/");
    const task = await submit(pool, { payload: bigValue(100 * KIB, "SMALL-SECRET") });
    const row = await rawRow(pool, task.id);
    expect(row.payload).toMatch(/^e1\./);
    await register(pool, "a1");
    const [leased] = await lease(pool, "a1");
    await api("POST", `/v1/tasks/${task.id}/complete`, { leaseToken: leased.leaseToken, result: { ok: true } });
    expect((await rawRow(pool, task.id)).result).toMatch(/^e1\./);
    expect(await keysUnder("payload/")).toEqual(before);
  });

  it("still reads a row written before large payloads went to R2 (an inline envelope of any size)", async () => {
    const pool = freshPool("old");
    const task = await submit(pool, { payload: { n: 1 } });
    const row = await rawRow(pool, task.id);
    const old = bigValue(300 * KIB, "OLD-ROW");
    await setColumn(pool, task.id, "payload", await encryptField(keyringFromEnv(env), row.tenant, "payload", JSON.stringify(old)));
    expect((await api("GET", `/v1/tasks/${task.id}`)).body.payload).toEqual(old);
    await register(pool, "a1");
    expect((await lease(pool, "a1"))[0].payload).toEqual(old);
  });

  it("deletes the R2 objects with the task when it is purged, and nothing before", async () => {
    const pool = freshPool("purge");
    const clock = await new PoolClock(pool).install();
    const task = await submit(pool, { payload: bigValue(200 * KIB, "PURGE-P") });
    await register(pool, "a1");
    const [leased] = await lease(pool, "a1");
    await api("POST", `/v1/tasks/${task.id}/complete`, { leaseToken: leased.leaseToken, result: bigValue(200 * KIB, "PURGE-R") });
    const row = await rawRow(pool, task.id);
    const keys = [keyOf(row.payload, "payload", row.tenant), keyOf(row.result, "result", row.tenant)];

    await clock.advance(7 * DAY - 1);
    for (const key of keys) expect(await env.BLOBS.head(key), key).not.toBeNull();
    await clock.advance(1);
    expect((await api("GET", `/v1/tasks/${task.id}`)).status).toBe(404);
    for (const key of keys) expect(await env.BLOBS.head(key), key).toBeNull();
    // The outbox is empty again: nothing is left to retry.
    expect(await blobRows(pool)).toBe(0);
  });

  it("tries a failed R2 delete again on the alarm, with backoff, until it goes through", async () => {
    const pool = freshPool("retry");
    const clock = await new PoolClock(pool).install();
    const task = await submit(pool, { payload: bigValue(200 * KIB, "RETRY-P") });
    await api("POST", `/v1/tasks/${task.id}/cancel`);
    const row = await rawRow(pool, task.id);
    const key = keyOf(row.payload, "payload", row.tenant);
    // The coordinator's R2 binding refuses deletes for a while.
    const bucket = await runInDurableObject(env.POOL.getByName(pool), (instance) => (instance as unknown as { env: Env }).env.BLOBS);
    const realDelete = bucket.delete.bind(bucket);
    let refusing = true;
    const blobs = bucket as { delete: R2Bucket["delete"] };
    blobs.delete = async (keys) => (refusing ? Promise.reject(new Error("R2 is down")) : realDelete(keys));
    try {
      await clock.advance(7 * DAY);
      expect((await api("GET", `/v1/tasks/${task.id}`)).status).toBe(404);
      expect(await env.BLOBS.head(key)).not.toBeNull();
      expect(await blobRows(pool)).toBe(1);
      refusing = false;
      // The first retry is 5 s later (the "blobs" timer kind keeps the alarm for it).
      await clock.advance(4_999);
      expect(await env.BLOBS.head(key)).not.toBeNull();
      await clock.advance(1);
      expect(await env.BLOBS.head(key)).toBeNull();
      expect(await blobRows(pool)).toBe(0);
    } finally {
      blobs.delete = realDelete;
    }
  });

  it("deletes a large result again when its completion is refused (lease lost), and a payload whose submit created nothing", async () => {
    const pool = freshPool("refused");
    const task = await submit(pool, { payload: { n: 1 }, idempotencyKey: "k1" });
    const row = await rawRow(pool, task.id);
    const results = await keysUnder(`result/${row.tenant}/`);
    const payloads = await keysUnder(`payload/${row.tenant}/`);
    await register(pool, "a1");
    await lease(pool, "a1");
    expectError(await api("POST", `/v1/tasks/${task.id}/complete`, { leaseToken: "not-current", result: bigValue(200 * KIB, "R") }), 409, "lease_lost");
    const settled = await api("POST", "/v1/tasks/settle", { items: [{ action: "complete", id: task.id, leaseToken: "not-current", result: bigValue(200 * KIB, "R") }] });
    expect(settled.body.results[0].error.code).toBe("lease_lost");
    // A repeat of the idempotency key answers the first task: the large payload sealed for it belongs to no row.
    const again = await api("POST", "/v1/tasks", { type: `${pool}.work`, idempotencyKey: "k1", payload: bigValue(200 * KIB, "P") });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(task.id);
    expect(await keysUnder(`result/${row.tenant}/`)).toEqual(results);
    expect(await keysUnder(`payload/${row.tenant}/`)).toEqual(payloads);
  });

  it("accepts a 9 MiB body and answers 413 above 10 MiB", async () => {
    const pool = freshPool("limit");
    const nine = JSON.stringify({ type: `${pool}.work`, payload: { s: "y".repeat(9 * MIB - 100) } });
    const ok = await api("POST", "/v1/tasks", nine);
    expect(ok.status).toBe(201);
    expect((await rawRow(pool, ok.body.id)).payload).toMatch(/^r1\./);
    expect(ok.body.payload.s.length).toBe(9 * MIB - 100);
    const over = JSON.stringify({ type: `${pool}.work`, payload: { s: "y".repeat(10 * MIB) } });
    expectError(await api("POST", "/v1/tasks", over), 413, "payload_too_large");
  });

  it("leaves payloads past the answer's budget out of an HTTP lease (marked), and the agent fetches them under its lease", async () => {
    const pool = freshPool("budget");
    const a = await submit(pool, { payload: { s: "a".repeat(7 * MIB) } });
    const b = await submit(pool, { payload: { s: "b".repeat(7 * MIB) } });
    await register(pool, "a1");
    const tasks = await lease(pool, "a1", 2);
    expect(tasks.map((t) => t.id)).toEqual([a.id, b.id]);
    expect(tasks[0].payload.s.length).toBe(7 * MIB);
    expect(tasks[1]).toMatchObject({ payload: null, payloadOmitted: true });
    const fetched = await api("GET", `/v1/tasks/${b.id}/payload?leaseToken=${encodeURIComponent(tasks[1].leaseToken)}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body.id).toBe(b.id);
    expect(fetched.body.payload.s.length).toBe(7 * MIB);
    expectError(await api("GET", `/v1/tasks/${b.id}/payload?leaseToken=not-current`), 409, "lease_lost");
  });
});

describe("large payloads over the WebSocket", () => {
  it("pushes a 300 KiB payload inline and takes a 300 KiB result in a frame", async () => {
    const pool = freshPool("wsbig");
    await register(pool, "w1");
    const socket = await connect(pool, "w1");
    socket.send({ type: "ready", credits: 1 });
    const payload = bigValue(300 * KIB, "WS-PAYLOAD");
    const task = await submit(pool, { payload });
    const pushed = (await socket.next("task")).task;
    expect(pushed.id).toBe(task.id);
    expect(pushed.payload).toEqual(payload);
    expect(pushed.payloadOmitted).toBeUndefined();

    const result = bigValue(300 * KIB, "WS-RESULT");
    socket.send({ type: "complete", id: task.id, leaseToken: pushed.leaseToken, result });
    expect(await socket.next("ack")).toMatchObject({ id: task.id, status: "succeeded" });
    const row = await rawRow(pool, task.id);
    await expectCiphertext(keyOf(row.result, "result", row.tenant), [result.marker]);
    expect((await api("GET", `/v1/tasks/${task.id}`)).body.result).toEqual(result);
    socket.ws.close(1000, "done");
  });

  it("pushes a task too large for a frame without its payload; the lease token fetches it; no frame is over the limit", async () => {
    const pool = freshPool("wshuge");
    await register(pool, "w1");
    const socket = await connect(pool, "w1");
    const huge = bigValue(2 * MIB, "HUGE");
    const big = await submit(pool, { payload: huge });
    // Three more of 400 KiB each: they fit a frame alone, not together.
    const mid = await Promise.all([1, 2, 3].map((n) => submit(pool, { payload: bigValue(400 * KIB, `MID-${n}`) })));
    socket.send({ type: "ready", credits: 4 });
    const pushed = await Promise.all([0, 1, 2, 3].map(() => socket.next("task")));
    const byId = new Map(pushed.map((m) => [m.task.id, m.task]));
    expect([...byId.keys()].sort()).toEqual([big.id, ...mid.map((t) => t.id)].sort());
    expect(byId.get(big.id)).toMatchObject({ payload: null, payloadOmitted: true });
    for (const t of mid) expect(byId.get(t.id).payload).toEqual(t.payload);
    expect(socket.frames.every((bytes) => bytes <= 1_000_000), String(socket.frames)).toBe(true);
    // 1.2 MB of tasks: split over frames, none over the limit.
    expect(socket.frames.reduce((sum, bytes) => sum + bytes, 0)).toBeGreaterThan(1_200_000);

    const leaseToken = byId.get(big.id).leaseToken;
    const fetched = await api("GET", `/v1/tasks/${big.id}/payload?leaseToken=${encodeURIComponent(leaseToken)}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body.payload).toEqual(huge);
    // A result too large for a frame goes over HTTP (the SDK does so by itself).
    const done = await api("POST", `/v1/tasks/${big.id}/complete`, { leaseToken, result: bigValue(2 * MIB, "HUGE-R") });
    expect(done.status).toBe(200);
    expect(done.body.result.marker).toBe("HUGE-R");
    // Once the lease is spent, the payload is no longer the agent's to read.
    expectError(await api("GET", `/v1/tasks/${big.id}/payload?leaseToken=${encodeURIComponent(leaseToken)}`), 409, "lease_lost");
    socket.ws.close(1000, "done");
  });
});
