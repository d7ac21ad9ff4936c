import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { PoolCoordinator } from "../../durable-objects/pool-coordinator";
import type { Principal, TaskInput } from "../../contract/records";
import { freshPool, poolStub } from "../helpers";

/**
 * Random sequences of submit / lease / complete / fail / expire / cancel / redrive / agent loss against one
 * coordinator, with the invariants checked after every step:
 * - no task is lost: every id ever answered by submit is still there (nothing is old enough to purge);
 * - a task is leased exactly when it has a lease token, and only its newest token is accepted;
 * - no task has two accepted results;
 * - the counts by status kept by triggers equal a count of the table, and add up to the number of tasks;
 * - an agent's in-flight count equals the tasks leased to it and never exceeds its concurrency.
 */

const ADMIN: Principal = { tenant: "default", allTenants: true, actor: "admin", fleetOperator: true, agentOnly: false, certVerified: false };
const AGENTS = ["a", "b"] as const;

type Op =
  | { kind: "submit"; n: number; priority: number; maxAttempts: number; delayMs: number; depend: boolean }
  | { kind: "lease"; agent: number; max: number }
  | { kind: "complete"; pick: number; stale: boolean }
  | { kind: "settle"; picks: number[]; stale: boolean }
  | { kind: "fail"; pick: number; retryable: boolean; stale: boolean }
  | { kind: "extend"; pick: number }
  | { kind: "time"; ms: number }
  | { kind: "cancel"; pick: number }
  | { kind: "redrive"; all: boolean; pick: number }
  | { kind: "dropAgent"; agent: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("submit" as const),
      n: fc.integer({ min: 1, max: 4 }),
      priority: fc.integer({ min: 0, max: 9 }),
      maxAttempts: fc.integer({ min: 1, max: 3 }),
      delayMs: fc.constantFrom(0, 0, 0, 1500),
      depend: fc.integer({ min: 0, max: 3 }).map((x) => x === 0),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("lease" as const), agent: fc.integer({ min: 0, max: 1 }), max: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("complete" as const), pick: fc.nat(), stale: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("settle" as const), picks: fc.array(fc.nat(), { minLength: 2, maxLength: 5 }), stale: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("fail" as const), pick: fc.nat(), retryable: fc.boolean(), stale: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("extend" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("time" as const), ms: fc.constantFrom(500, 2_000, 10_000, 400_000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("redrive" as const), all: fc.boolean(), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("dropAgent" as const), agent: fc.integer({ min: 0, max: 1 }) }) },
);

/** What the runs exercised, so a generator that stops reaching the interesting paths fails the test. */
const seen = { leased: 0, completed: 0, refused: 0, expired: 0, dead: 0, redriven: 0 };

interface Held {
  id: string;
  token: string;
}

function input(op: Extract<Op, { kind: "submit" }>, dependsOn: string[]): TaskInput {
  return {
    type: "prop.work",
    payload: "{}",
    priority: op.priority,
    requires: { capabilities: [], cpu: 0, memoryMb: 0, gpu: 0 },
    idempotencyKey: null,
    maxAttempts: op.maxAttempts,
    timeoutMs: 5_000,
    delayMs: op.delayMs,
    dependsOn,
  };
}

async function runScenario(ops: Op[]): Promise<void> {
  const pool = freshPool("prop");
  const stub = poolStub(pool);
  await runInDurableObject(stub, async (c: PoolCoordinator) => {
    let now = Math.ceil(Date.now() / 1e9) * 1e9 + 10 * 365 * 24 * 3600 * 1000;
    c.clock = () => now;
    const ids: string[] = [];
    const held: Held[] = [];
    const stale: Held[] = [];
    const accepted = new Map<string, number>();
    const register = async (agentId: string) => {
      const r = await c.registerAgent(ADMIN, { agentId, capabilities: [], resources: { cpu: 1, memoryMb: 1, gpu: 0 }, maxConcurrency: 3, metadata: "{}" });
      expect(r.ok).toBe(true);
    };
    // Agent health and breakers have their own tests; here agents must survive long silences and many failures.
    expect((await c.updateConfig(ADMIN, { heartbeatIntervalMs: 3_600_000, missedHeartbeats: 100, breaker: { failureThreshold: 1000 } })).ok).toBe(true);
    for (const a of AGENTS) await register(a);

    const sql = (c as unknown as { ctx: DurableObjectState }).ctx.storage.sql;
    /** The fencing rule: a token is accepted exactly when it is the task's current lease. */
    const isCurrent = (h: Held): boolean =>
      sql.exec<{ lease_token: string | null }>("SELECT lease_token FROM tasks WHERE id = ?", h.id).toArray()[0]?.lease_token === h.token;
    const take = (pick: number, fromStale: boolean): Held | undefined => {
      const list = fromStale && stale.length > 0 ? stale : held;
      if (list.length === 0) return undefined;
      return list.splice(pick % list.length, 1)[0];
    };

    for (const op of ops) {
      switch (op.kind) {
        case "submit": {
          const deps = op.depend && ids.length > 0 ? [ids[ids.length - 1]!] : [];
          const r = await c.submit(ADMIN, Array.from({ length: op.n }, () => input(op, deps)));
          expect(r.ok).toBe(true);
          if (r.ok) ids.push(...r.value.map((o) => o.task.id));
          break;
        }
        case "lease": {
          const r = await c.lease(ADMIN, AGENTS[op.agent]!, op.max, 0);
          if (r.ok) {
            seen.leased += r.value.length;
            for (const t of r.value) {
              // A newer lease makes any token still held for this task stale.
              for (let i = held.length - 1; i >= 0; i--) if (held[i]!.id === t.id) stale.push(...held.splice(i, 1));
              held.push({ id: t.id, token: t.leaseToken });
            }
          } else {
            expect(r.error.code).toBe("not_found");
          }
          break;
        }
        case "complete": {
          const h = take(op.pick, op.stale);
          if (!h) break;
          const current = isCurrent(h);
          const r = await c.complete(ADMIN, h.id, h.token, '{"ok":true}');
          expect(r.ok).toBe(current);
          if (r.ok) {
            accepted.set(h.id, (accepted.get(h.id) ?? 0) + 1);
            seen.completed++;
          } else {
            expect(r.error.code).toBe("lease_lost");
            seen.refused++;
          }
          break;
        }
        case "settle": {
          // Several completions in one call: the batched path; each is accepted exactly when its token is current.
          const items: Held[] = [];
          for (const [k, pick] of op.picks.entries()) {
            // Mix stale tokens (of tasks leased again since) with current ones in one batch.
            const h = take(pick, op.stale ? k % 2 === 0 : k % 2 === 1);
            if (h && !items.some((x) => x.id === h.id)) items.push(h);
          }
          if (items.length === 0) break;
          const current = items.map(isCurrent);
          const r = await c.settle(ADMIN, items.map((h) => ({ action: "complete" as const, id: h.id, leaseToken: h.token, result: '{"batch":true}' })));
          expect(r.ok).toBe(true);
          if (!r.ok) break;
          r.value.forEach((res, k) => {
            expect("status" in res).toBe(current[k]);
            if ("status" in res) {
              accepted.set(res.id, (accepted.get(res.id) ?? 0) + 1);
              seen.completed++;
            } else {
              expect(res.error.code).toBe("lease_lost");
              seen.refused++;
            }
          });
          break;
        }
        case "fail": {
          const h = take(op.pick, op.stale);
          if (!h) break;
          const current = isCurrent(h);
          const r = await c.fail(ADMIN, h.id, h.token, '{"message":"x"}', op.retryable);
          expect(r.ok).toBe(current);
          if (!r.ok) expect(r.error.code).toBe("lease_lost");
          break;
        }
        case "extend": {
          const h = held[op.pick % Math.max(1, held.length)];
          if (!h) break;
          const current = isCurrent(h);
          const r = await c.extend(ADMIN, h.id, h.token, 5_000);
          expect(r.ok).toBe(current);
          if (!r.ok) expect(r.error.code).toBe("lease_lost");
          break;
        }
        case "time": {
          now += op.ms;
          const before = sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE status = 'leased' AND lease_expires_at <= ?", now).one().n;
          await c.alarm();
          seen.expired += before;
          expect(sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE status = 'leased' AND lease_expires_at <= ?", now).one().n).toBe(0);
          break;
        }
        case "cancel": {
          if (ids.length === 0) break;
          const r = await c.cancel(ADMIN, ids[op.pick % ids.length]!);
          if (!r.ok) expect(r.error.code).toBe("conflict");
          break;
        }
        case "redrive": {
          const r = await c.redrive(ADMIN, op.all || ids.length === 0 ? null : [ids[op.pick % ids.length]!]);
          expect(r.ok).toBe(true);
          if (r.ok) seen.redriven += r.value.redriven;
          break;
        }
        case "dropAgent": {
          const agentId = AGENTS[op.agent]!;
          const r = await c.deleteAgent(ADMIN, agentId);
          expect(r.ok).toBe(true);
          // Its leases went back at once: nothing is leased to it before it registers again.
          expect(sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE agent_id = ? AND status = 'leased'", agentId).one().n).toBe(0);
          await register(agentId);
          break;
        }
      }
      checkInvariants(c, ids, held, accepted);
    }
    seen.dead += sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE status = 'dead'").one().n;
  });
}

function checkInvariants(c: PoolCoordinator, ids: string[], held: Held[], accepted: Map<string, number>): void {
  const sql = (c as unknown as { ctx: DurableObjectState }).ctx.storage.sql;
  const rows = sql
    .exec<{ id: string; status: string; lease_token: string | null; agent_id: string | null }>("SELECT id, status, lease_token, agent_id FROM tasks")
    .toArray();
  const byId = new Map(rows.map((r) => [r.id, r]));
  // Nothing acknowledged is lost.
  for (const id of ids) expect(byId.has(id), `task ${id} lost`).toBe(true);
  expect(rows.length).toBe(ids.length);
  // Leased exactly when a token is set; a token we hold is valid only if it is the task's current one.
  for (const r of rows) expect(r.status === "leased").toBe(r.lease_token !== null);
  const valid = new Map<string, number>();
  for (const h of held) if (byId.get(h.id)?.lease_token === h.token) valid.set(h.id, (valid.get(h.id) ?? 0) + 1);
  for (const n of valid.values()) expect(n).toBeLessThanOrEqual(1);
  // At most one accepted result per task, and every accepted one is succeeded (or redriven since).
  for (const n of accepted.values()) expect(n).toBeLessThanOrEqual(1);
  // Counts by status kept by the triggers match the table.
  const kept = Object.fromEntries(
    sql.exec<{ status: string; n: number }>("SELECT status, sum(n) AS n FROM status_counts GROUP BY status").toArray().filter((r) => r.n > 0).map((r) => [r.status, r.n]),
  );
  const counted = Object.fromEntries(
    sql.exec<{ status: string; n: number }>("SELECT status, count(*) AS n FROM tasks GROUP BY status").toArray().map((r) => [r.status, r.n]),
  );
  expect(kept).toEqual(counted);
  // In flight per agent within its concurrency, and only for agents that exist.
  const agents = new Set(sql.exec<{ agent_id: string }>("SELECT agent_id FROM agents").toArray().map((r) => r.agent_id));
  const inFlight = new Map<string, number>();
  for (const r of rows) if (r.status === "leased") inFlight.set(r.agent_id!, (inFlight.get(r.agent_id!) ?? 0) + 1);
  for (const [agent, n] of inFlight) {
    expect(agents.has(agent), `a task is leased to missing agent ${agent}`).toBe(true);
    expect(n).toBeLessThanOrEqual(3);
  }
  // Waiting tasks with unfinished dependencies are tracked; no queued task has any.
  const queuedWithDeps = sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks WHERE status = 'queued' AND pending_deps > 0").one().n;
  expect(queuedWithDeps).toBe(0);
  const orphanDeps = sql
    .exec<{ n: number }>("SELECT count(*) AS n FROM task_deps d JOIN tasks t ON t.seq = d.task_seq WHERE t.status <> 'waiting'")
    .one().n;
  expect(orphanDeps).toBe(0);
}

describe("queue invariants under random operations", () => {
  it("hold after every step", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 80 }), async (ops) => runScenario(ops)),
      { numRuns: 100 },
    );
    console.log("queue-invariants exercised", JSON.stringify(seen));
    expect(seen.leased).toBeGreaterThan(150);
    expect(seen.completed).toBeGreaterThan(30);
    expect(seen.refused).toBeGreaterThan(5);
    expect(seen.expired).toBeGreaterThan(10);
    expect(seen.dead).toBeGreaterThan(10);
    expect(seen.redriven).toBeGreaterThan(0);
  });
});
