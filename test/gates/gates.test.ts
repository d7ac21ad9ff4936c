import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { api, expectError, freshPool, lease, PoolClock, register } from "../helpers";
import { createKey } from "../security/fixtures";

/**
 * Concurrency keys, rate keys and debounce (API.md, "Workflows, fairness and schedules"; docs/scheduling.md),
 * at their edges, through the HTTP API.
 */

let otherTenant = "";

beforeAll(async () => {
  otherTenant = (await createKey("gates-other", ["client"])).key;
});

async function config(pool: string, patch: Record<string, unknown>): Promise<any> {
  const res = await api("PUT", `/v1/pools/${pool}/config`, patch);
  if (res.status !== 200) throw new Error(`config answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function submitN(pool: string, n: number, fields: Record<string, unknown>, token?: string): Promise<any[]> {
  const res = await api("POST", "/v1/tasks/batch", { tasks: Array.from({ length: n }, (_, i) => ({ type: `${pool}.work`, payload: { i }, ...fields })) }, token ? { token } : {});
  if (res.status !== 201) throw new Error(`batch answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.tasks;
}

async function status(id: string): Promise<string> {
  return (await api("GET", `/v1/tasks/${id}`)).body.status;
}

async function complete(task: { id: string; leaseToken: string }): Promise<void> {
  const res = await api("POST", `/v1/tasks/${task.id}/complete`, { leaseToken: task.leaseToken, result: {} });
  if (res.status !== 200) throw new Error(`complete answered ${res.status}: ${JSON.stringify(res.body)}`);
}

describe("concurrency keys", () => {
  it("leases at most the key's limit at once, oldest first, releasing the next as one ends; other keys and tenants are apart", async () => {
    const pool = freshPool("gate-conc");
    await register(pool, "g1", { maxConcurrency: 100 });
    expect((await config(pool, { concurrency: { limits: { render: 2 } } })).concurrency).toEqual({ default: null, limits: { render: 2 } });
    const keyed = await submitN(pool, 5, { concurrencyKey: "render" });
    expect(keyed.map((t) => t.status)).toEqual(["queued", "queued", "waiting", "waiting", "waiting"]);
    const free = await submitN(pool, 2, {});
    const theirs = await submitN(pool, 3, { concurrencyKey: "render" }, otherTenant);
    expect(theirs.map((t) => t.status)).toEqual(["queued", "queued", "waiting"]);

    const first = await lease(pool, "g1", 100);
    expect(first.map((t) => t.id).sort()).toEqual([keyed[0].id, keyed[1].id, free[0].id, free[1].id, theirs[0].id, theirs[1].id].sort());
    expect(await lease(pool, "g1", 100)).toEqual([]);
    // One ends: the oldest held task of that tenant's key is queued, and only it.
    await complete(first.find((t) => t.id === keyed[0].id)!);
    expect(await status(keyed[2].id)).toBe("queued");
    expect(await status(keyed[3].id)).toBe("waiting");
    expect(await status(theirs[2].id)).toBe("waiting");
    const next = await lease(pool, "g1", 100);
    expect(next.map((t) => t.id)).toEqual([keyed[2].id]);

    // A failed attempt frees its place; its retry waits its backoff, then its turn behind the key's held tasks.
    const failed = await api("POST", `/v1/tasks/${next[0].id}/fail`, { leaseToken: next[0].leaseToken, error: { message: "try again" } });
    expect(failed.body.status).toBe("waiting");
    expect(await status(keyed[3].id)).toBe("queued");
    // Cancelling a held task frees nothing and holds nothing up; cancelling a leased one frees its place.
    expect((await api("POST", `/v1/tasks/${keyed[4].id}/cancel`)).body.status).toBe("cancelled");
    await api("POST", `/v1/tasks/${theirs[0].id}/cancel`);
    expect(await status(theirs[2].id)).toBe("queued");
  });

  it("the default limit applies to keys not listed; raising a limit releases held tasks at once", async () => {
    const pool = freshPool("gate-default");
    await register(pool, "g1", { maxConcurrency: 100 });
    await config(pool, { concurrency: { default: 1, limits: { wide: 3 } } });
    const narrow = await submitN(pool, 3, { concurrencyKey: "anything" });
    const wide = await submitN(pool, 4, { concurrencyKey: "wide" });
    expect(narrow.map((t) => t.status)).toEqual(["queued", "waiting", "waiting"]);
    expect(wide.map((t) => t.status)).toEqual(["queued", "queued", "queued", "waiting"]);
    await config(pool, { concurrency: { limits: { anything: 3 } } });
    expect(await status(narrow[1].id)).toBe("queued");
    expect(await status(narrow[2].id)).toBe("queued");
    // Removing the key's limit and the default: nothing is held any more.
    const after = await config(pool, { concurrency: { default: null, limits: { wide: null } } });
    expect(after.concurrency).toEqual({ default: null, limits: { anything: 3 } });
    expect(await status(wide[3].id)).toBe("queued");
  });

  it("property: under any mix of submits, leases, completions, failures and cancels, a key never has more than its limit queued or leased, and draining ends every task", async () => {
    const LIMITS = { a: 1, b: 2 } as const;
    const op = fc.oneof(
      fc.record({ kind: fc.constant("submit" as const), key: fc.constantFrom("a", "b", null), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant("lease" as const), n: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constantFrom("complete" as const, "fail" as const, "cancel" as const), pick: fc.nat() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), async (ops) => {
        const pool = freshPool("gate-prop");
        await register(pool, "g1", { maxConcurrency: 100 });
        await config(pool, { concurrency: { limits: LIMITS } });
        const keyOf = new Map<string, "a" | "b" | null>();
        let leased: any[] = [];
        const check = async () => {
          const page = (await api("GET", `/v1/pools/${pool}/tasks?limit=200`)).body.tasks as { id: string; status: string }[];
          for (const key of ["a", "b"] as const) {
            const active = page.filter((t) => keyOf.get(t.id) === key && (t.status === "queued" || t.status === "leased"));
            expect(active.length).toBeLessThanOrEqual(LIMITS[key]);
          }
        };
        for (const o of ops) {
          if (o.kind === "submit") {
            for (const t of await submitN(pool, o.n, o.key ? { concurrencyKey: o.key, maxAttempts: 1 } : { maxAttempts: 1 })) keyOf.set(t.id, o.key);
          } else if (o.kind === "lease") {
            leased.push(...(await lease(pool, "g1", o.n)));
          } else if (leased.length > 0) {
            const t = leased.splice(o.pick % leased.length, 1)[0]!;
            if (o.kind === "complete") await complete(t);
            else if (o.kind === "fail") await api("POST", `/v1/tasks/${t.id}/fail`, { leaseToken: t.leaseToken, error: { message: "no" }, retryable: false });
            else await api("POST", `/v1/tasks/${t.id}/cancel`);
          }
          await check();
        }
        // Drain: everything ends, nothing stays held.
        for (let round = 0; round < 50; round++) {
          for (const t of leased) await complete(t);
          leased = await lease(pool, "g1", 100);
          await check();
          if (leased.length === 0) break;
        }
        const left = (await api("GET", `/v1/pools/${pool}`)).body.queue;
        expect({ waiting: left.waiting, queued: left.queued, leased: left.leased }).toEqual({ waiting: 0, queued: 0, leased: 0 });
      }),
      { numRuns: 12 },
    );
  });
});

describe("rate keys", () => {
  it("at most the limit of leases per period, exactly at its edges; the alarm queues held tasks when the window frees", async () => {
    const pool = freshPool("gate-rate");
    const clock = await new PoolClock(pool).install();
    await register(pool, "g1", { maxConcurrency: 100 });
    await config(pool, { rateLimits: { api: { limit: 3, periodMs: 1000 } } });
    const tasks = await submitN(pool, 8, { rateLimitKey: "api" });
    expect(tasks.map((t) => t.status)).toEqual(["queued", "queued", "queued", "waiting", "waiting", "waiting", "waiting", "waiting"]);
    const first = await lease(pool, "g1", 100);
    expect(first.map((t) => t.id)).toEqual(tasks.slice(0, 3).map((t) => t.id));
    for (const t of first) await complete(t);
    // Completing does not give a token back: only time does.
    await clock.advance(999);
    expect(await lease(pool, "g1", 100)).toEqual([]);
    await clock.advance(1);
    const second = await lease(pool, "g1", 100);
    expect(second.map((t) => t.id)).toEqual(tasks.slice(3, 6).map((t) => t.id));
    // Tokens come back one by one, each a period after its lease.
    await clock.advance(400);
    expect(await lease(pool, "g1", 100)).toEqual([]);
    await clock.advance(600);
    expect((await lease(pool, "g1", 100)).map((t) => t.id)).toEqual(tasks.slice(6, 8).map((t) => t.id));
  });

  it("a key with no rate configured is not limited; bad limits are 400 naming the field and change nothing", async () => {
    const pool = freshPool("gate-rate-bad");
    await register(pool, "g1", { maxConcurrency: 100 });
    const tasks = await submitN(pool, 4, { rateLimitKey: "unset" });
    expect(tasks.every((t) => t.status === "queued")).toBe(true);
    const before = (await api("GET", `/v1/pools/${pool}/config`)).body;
    const bad = await api("PUT", `/v1/pools/${pool}/config`, { rateLimits: { unset: { limit: 3, periodMs: 10 } } });
    expectError(bad, 400, "invalid_request");
    expect(JSON.stringify(bad.body.error.details)).toContain("rateLimits.unset.periodMs");
    expectError(await api("PUT", `/v1/pools/${pool}/config`, { concurrency: { limits: { x: 0 } } }), 400, "invalid_request");
    expect((await api("GET", `/v1/pools/${pool}/config`)).body).toEqual(before);
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.work`, concurrencyKey: "" }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.work`, rateLimitKey: "x".repeat(129) }), 400, "invalid_request");
  });
});

describe("debounce", () => {
  it("a later submit of the same key replaces the payload and moves the start, bounded by maxWaitMs; once leased, a submit makes a new task", async () => {
    const pool = freshPool("gate-debounce");
    const clock = await new PoolClock(pool).install();
    await register(pool, "g1", { maxConcurrency: 100 });
    const debounce = { key: "doc-7", delayMs: 1000, maxWaitMs: 2500 };
    const first = await api("POST", "/v1/tasks", { type: `${pool}.index`, payload: { v: 1 }, debounce });
    expect(first.status).toBe(201);
    expect(first.body.status).toBe("waiting");
    expect(Date.parse(first.body.runAfter)).toBe(clock.now + 1000);
    const t0 = clock.now;

    await clock.advance(800);
    const second = await api("POST", "/v1/tasks", { type: `${pool}.index`, payload: { v: 2 }, debounce });
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect(second.body.payload).toEqual({ v: 2 });
    expect(Date.parse(second.body.runAfter)).toBe(clock.now + 1000);
    // Another type, another tenant: their own tasks.
    expect((await api("POST", "/v1/tasks", { type: `${pool}.other`, pool, payload: {}, debounce })).status).toBe(201);
    expect((await api("POST", "/v1/tasks", { type: `${pool}.index`, payload: {}, debounce }, { token: otherTenant })).status).toBe(201);

    await clock.advance(800);
    expect(await lease(pool, "g1", 10)).toEqual([]);
    // maxWaitMs: the start is never later than the first submit plus 2500 ms.
    await clock.advance(800);
    const third = await api("POST", "/v1/tasks", { type: `${pool}.index`, payload: { v: 3 }, debounce });
    expect(third.body.id).toBe(first.body.id);
    expect(Date.parse(third.body.runAfter)).toBe(t0 + 2500);
    await clock.advance(t0 + 2500 - clock.now);
    const got = (await lease(pool, "g1", 10)).filter((t) => t.id === first.body.id);
    expect(got.map((t) => t.payload)).toEqual([{ v: 3 }]);
    const fourth = await api("POST", "/v1/tasks", { type: `${pool}.index`, payload: { v: 4 }, debounce });
    expect(fourth.status).toBe(201);
    expect(fourth.body.id).not.toBe(first.body.id);
  });

  it("bad debounce values are 400 naming the field", async () => {
    const pool = freshPool("gate-debounce-bad");
    const bad = await api("POST", "/v1/tasks", { type: `${pool}.work`, debounce: { key: "k", delayMs: 3_600_001 } });
    expectError(bad, 400, "invalid_request");
    expect(JSON.stringify(bad.body.error.details)).toContain("debounce.delayMs");
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.work`, debounce: { key: "k", delayMs: 10, maxWaitMs: 86_400_001 } }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.work`, debounce: { delayMs: 10 } }), 400, "invalid_request");
    expect((await api("GET", `/v1/pools/${pool}`)).status).toBe(404);
  });
});
