import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { PoolCoordinator } from "../../durable-objects/pool-coordinator";
import { migrate, MIGRATIONS } from "../../durable-objects/pool-coordinator/schema";
import { listQuery } from "../../durable-objects/pool-coordinator/tasks";
import { freshPool, poolStub } from "../helpers";

describe("schema migrations", () => {
  it("bring a pool written by the previous version up to date, its tasks listed by status as before", async () => {
    // A coordinator that was never written to has no schema: build version 6 by hand, with tasks in every status.
    await runInDurableObject(poolStub(freshPool("migrate")), (_: PoolCoordinator, state) => {
      const sql = state.storage.sql;
      state.storage.transactionSync(() => {
        for (const m of MIGRATIONS.slice(0, 6)) sql.exec(m);
        sql.exec("INSERT INTO meta (key, value) VALUES ('schema_version', '6')");
        sql.exec("INSERT INTO lanes (id, tenant, capabilities, cpu, memory_mb, gpu) VALUES (1, 'default', '[]', 0, 0, 0)");
        const statuses = ["queued", "leased", "succeeded", "waiting", "leased", "dead", "cancelled", "queued"];
        statuses.forEach((status, i) => {
          const leased = status === "leased";
          const final = ["succeeded", "dead", "cancelled"].includes(status);
          sql.exec(
            `INSERT INTO tasks (id, lane, tenant, type, status, priority, payload, max_attempts, timeout_ms, agent_id, lease_token,
               lease_expires_at, timer_at, created_at, updated_at, finished_at)
             VALUES (?, 1, 'default', 't', ?, 0, '{}', 1, 1000, ?, ?, ?, ?, 1, 1, ?)`,
            `p.0.task${i}`,
            status,
            leased ? "a1" : null,
            leased ? `tok${i}` : null,
            leased ? 5000 : null,
            leased || status === "waiting" ? 5000 : null,
            final ? 2 : null,
          );
        });
      });
      expect(sql.exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'tasks_by_status'").one().sql).not.toContain("WHERE");

      state.storage.transactionSync(() => migrate(sql));
      expect(sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").one().value).toBe(String(MIGRATIONS.length));
      expect(sql.exec<{ sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'tasks_by_status'").one().sql).toContain("status = 'queued'");
      const listed = (status: "queued" | "leased" | "succeeded" | "waiting" | "dead" | "cancelled") =>
        sql.exec<{ id: string }>(listQuery(status, false), 0, 100).toArray().map((r) => r.id);
      expect(listed("queued")).toEqual(["p.0.task0", "p.0.task7"]);
      expect(listed("leased")).toEqual(["p.0.task1", "p.0.task4"]);
      expect(listed("succeeded")).toEqual(["p.0.task2"]);
      expect(listed("waiting")).toEqual(["p.0.task3"]);
      expect(listed("dead")).toEqual(["p.0.task5"]);
      expect(listed("cancelled")).toEqual(["p.0.task6"]);
      expect(sql.exec<{ id: string }>(listQuery(null, true), 0, "default", 100).toArray().length).toBe(8);
      // Running it again changes nothing.
      state.storage.transactionSync(() => migrate(sql));
      expect(sql.exec<{ n: number }>("SELECT count(*) AS n FROM tasks").one().n).toBe(8);
    });
  });
});
