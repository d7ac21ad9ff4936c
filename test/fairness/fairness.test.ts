import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { api, expectError, freshPool, lease, register } from "../helpers";
import { createKey } from "../security/fixtures";

/**
 * Fair scheduling (docs/scheduling.md): within one priority, deficit round robin over fairness keys (default the
 * tenant) with the tenant's weight as its quantum; FIFO inside a key; `scheduling: "fifo"` keeps arrival order.
 */

const TENANTS = ["fair-a", "fair-b", "fair-c"] as const;
type Tenant = (typeof TENANTS)[number];
const keys = new Map<string, string>();

beforeAll(async () => {
  for (const t of TENANTS) keys.set(t, (await createKey(t, ["client"])).key);
});

async function submitMany(pool: string, tenant: Tenant, count: number, fields: Record<string, unknown> = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let from = 0; from < count; from += 1000) {
    const tasks = Array.from({ length: Math.min(1000, count - from) }, () => ({ type: `${pool}.work`, ...fields }));
    const res = await api("POST", "/v1/tasks/batch", { tasks }, { token: keys.get(tenant)! });
    if (res.status !== 201) throw new Error(`batch answered ${res.status}: ${JSON.stringify(res.body)}`);
    ids.push(...res.body.tasks.map((t: { id: string }) => t.id));
  }
  return ids;
}

async function setWeight(pool: string, tenant: string, weight: number): Promise<void> {
  const res = await api("PUT", `/v1/pools/${pool}/tenants/${tenant}`, { weight });
  if (res.status !== 200) throw new Error(`weight answered ${res.status}: ${JSON.stringify(res.body)}`);
}

/** Leases everything, `batch` at a time (an agent of the shared fleet), answering tenant and id in serving order. */
async function drain(pool: string, batches: readonly number[]): Promise<{ tenant: string; id: string }[]> {
  const served: { tenant: string; id: string }[] = [];
  for (let i = 0; ; i++) {
    const got = await lease(pool, "fa1", batches[i % batches.length]!);
    if (got.length === 0) return served;
    for (const t of got) served.push({ tenant: t.tenant, id: t.id });
    // Settled at once, so the agent never runs out of room.
    for (const t of got) await api("POST", `/v1/tasks/${t.id}/complete`, { leaseToken: t.leaseToken, result: {} });
  }
}

describe("fair scheduling", () => {
  it("a later tenant is served within one round of another tenant's flood; fifo serves it after the flood", async () => {
    for (const scheduling of ["fair", "fifo"] as const) {
      const pool = freshPool(`fair-flood-${scheduling}`);
      await register(pool, "fa1", { maxConcurrency: 1000 });
      if (scheduling === "fifo") expect((await api("PUT", `/v1/pools/${pool}/config`, { scheduling: "fifo" })).body.scheduling).toBe("fifo");
      else expect((await api("GET", `/v1/pools/${pool}/config`)).body.scheduling).toBe("fair");
      await submitMany(pool, "fair-a", 300);
      const late = await submitMany(pool, "fair-b", 5);
      const first = await lease(pool, "fa1", 10);
      const tenants = first.map((t) => t.tenant);
      if (scheduling === "fair") {
        expect(tenants).toEqual(["fair-a", "fair-b", "fair-a", "fair-b", "fair-a", "fair-b", "fair-a", "fair-b", "fair-a", "fair-b"]);
        expect(first.filter((t) => t.tenant === "fair-b").map((t) => t.id)).toEqual(late);
      } else {
        expect(new Set(tenants)).toEqual(new Set(["fair-a"]));
      }
    }
  });

  it("weights 2:1 serve two of A's tasks for each of B's; a weight change applies from the next lease", async () => {
    const pool = freshPool("fair-weights");
    await register(pool, "fa1", { maxConcurrency: 1000 });
    await setWeight(pool, "fair-a", 2);
    await submitMany(pool, "fair-a", 40);
    await submitMany(pool, "fair-b", 40);
    const served = (await lease(pool, "fa1", 30)).map((t) => t.tenant);
    expect(served.filter((t) => t === "fair-a").length).toBe(20);
    expect(served.slice(0, 6)).toEqual(["fair-a", "fair-a", "fair-b", "fair-a", "fair-a", "fair-b"]);
    await setWeight(pool, "fair-a", 1);
    const next = (await lease(pool, "fa1", 10)).map((t) => t.tenant);
    expect(next.filter((t) => t === "fair-a").length).toBe(5);
  });

  it("fairness keys split one tenant's tasks; priority still comes first; FIFO inside a key", async () => {
    const pool = freshPool("fair-keys");
    await register(pool, "fa1", { maxConcurrency: 1000 });
    const x = await submitMany(pool, "fair-a", 6, { fairnessKey: "x" });
    const y = await submitMany(pool, "fair-a", 3, { fairnessKey: "y" });
    const urgent = await submitMany(pool, "fair-b", 2, { priority: 9 });
    const served = (await lease(pool, "fa1", 11)).map((t) => t.id);
    expect(served.slice(0, 2)).toEqual(urgent);
    expect(served.slice(2)).toEqual([x[0], y[0], x[1], y[1], x[2], y[2], x[3], x[4], x[5]]);
  });

  it("the push path serves in the same fair order", async () => {
    const pool = freshPool("fair-push");
    await submitMany(pool, "fair-a", 50);
    await submitMany(pool, "fair-b", 3);
    // Registered after the submits: the first leases it is pushed or takes follow the fair order.
    await register(pool, "fa1", { maxConcurrency: 6 });
    const got = await lease(pool, "fa1", 6);
    expect(got.map((t) => t.tenant).sort()).toEqual(["fair-a", "fair-a", "fair-a", "fair-b", "fair-b", "fair-b"]);
  });

  it("refuses a bad fairnessKey and a bad scheduling, and nothing changes", async () => {
    const pool = freshPool("fair-bad");
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.work`, fairnessKey: "" }), 400, "invalid_request");
    expectError(await api("POST", "/v1/tasks", { type: `${pool}.work`, fairnessKey: "k".repeat(129) }), 400, "invalid_request");
    expectError(await api("PUT", `/v1/pools/${pool}/config`, { scheduling: "lifo" }), 400, "invalid_request");
    await register(pool, "fa1");
    expect(await lease(pool, "fa1", 10)).toEqual([]);
    expect((await api("GET", `/v1/pools/${pool}/config`)).body.scheduling).toBe("fair");
  });

  it("property: for any arrival order, weights and lease sizes, every round serves each key min(weight, what it has left), FIFO inside a key", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...TENANTS), { minLength: 1, maxLength: 60 }),
        fc.record({ "fair-a": fc.integer({ min: 1, max: 4 }), "fair-b": fc.integer({ min: 1, max: 4 }), "fair-c": fc.integer({ min: 1, max: 4 }) }),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 }),
        async (arrivals, weights, batches) => {
          const pool = freshPool("fair-prop");
          await register(pool, "fa1", { maxConcurrency: 1000 });
          for (const t of TENANTS) if (weights[t] !== 1) await setWeight(pool, t, weights[t]);
          const order = new Map<string, string[]>(TENANTS.map((t) => [t, []]));
          // Arrivals in runs of one tenant, in the generated order.
          for (let i = 0; i < arrivals.length; ) {
            let j = i;
            while (j < arrivals.length && arrivals[j] === arrivals[i]) j++;
            order.get(arrivals[i]!)!.push(...(await submitMany(pool, arrivals[i]!, j - i)));
            i = j;
          }
          const served = await drain(pool, batches);
          expect(served.length).toBe(arrivals.length);
          const left = new Map(TENANTS.map((t) => [t, order.get(t)!.length]));
          let at = 0;
          while (at < served.length) {
            const want = new Map(TENANTS.map((t) => [t, Math.min(weights[t], left.get(t)!)]));
            const size = [...want.values()].reduce((a, b) => a + b, 0);
            const round = served.slice(at, at + size);
            for (const t of TENANTS) {
              expect(round.filter((s) => s.tenant === t).length).toBe(want.get(t));
              left.set(t, left.get(t)! - want.get(t)!);
            }
            at += size;
          }
          for (const t of TENANTS) expect(served.filter((s) => s.tenant === t).map((s) => s.id)).toEqual(order.get(t));
        },
      ),
      { numRuns: 15 },
    );
  });

  it("property: a key that becomes active mid-way is served within one round of the keys already waiting", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 30 }),
        fc.record({ "fair-a": fc.integer({ min: 1, max: 5 }), "fair-b": fc.integer({ min: 1, max: 5 }), "fair-c": fc.integer({ min: 1, max: 5 }) }),
        async (flood, servedBefore, weights) => {
          const pool = freshPool("fair-late");
          await register(pool, "fa1", { maxConcurrency: 1000 });
          for (const t of TENANTS) if (weights[t] !== 1) await setWeight(pool, t, weights[t]);
          await submitMany(pool, "fair-a", flood + servedBefore);
          await submitMany(pool, "fair-b", flood + servedBefore);
          if (servedBefore > 0) await lease(pool, "fa1", servedBefore);
          const [late] = await submitMany(pool, "fair-c", 1);
          // At most one round of the others (their weights) comes before the newcomer.
          const next = await lease(pool, "fa1", weights["fair-a"] + weights["fair-b"] + 1);
          expect(next.map((t) => t.id)).toContain(late);
        },
      ),
      { numRuns: 15 },
    );
  });
});
