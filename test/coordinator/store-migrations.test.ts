import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AUDIT_SCHEMA } from "../../durable-objects/audit-log";
import { KEY_SCHEMA } from "../../durable-objects/key-store";
import { DIRECTORY_SCHEMA } from "../../durable-objects/mesh-directory";
import { migrate, schemaVersion, type Schema } from "../../durable-objects/shared/migrations";

/**
 * The one migration mechanism of every Durable Object. The audit logs, key stores and the directory were made with
 * `CREATE TABLE IF NOT EXISTS` before they had version rows: such a store counts as version 1 and opens with its
 * data intact.
 */

let serial = 0;
const fresh = (prefix: string) => `${prefix}-${++serial}-${Math.floor(performance.now())}`;

/** Turns a live store back into what the earlier code left: its tables without `meta`. */
function asBeforeVersions(sql: SqlStorage): void {
  sql.exec("DROP TABLE meta");
}

describe("the migration mechanism", () => {
  it("numbers migrations, runs each once in order, and running it again changes nothing", async () => {
    const schema: Schema = {
      migrations: ["CREATE TABLE a (x INTEGER)", "ALTER TABLE a ADD COLUMN y INTEGER", "INSERT INTO a (x, y) VALUES (1, 2)"],
    };
    await runInDurableObject(env.DIRECTORY.getByName(fresh("mig")), (_, state) => {
      const sql = state.storage.sql;
      expect(schemaVersion(sql)).toBe(DIRECTORY_SCHEMA.migrations.length);
      sql.exec("DELETE FROM meta");
      state.storage.transactionSync(() => migrate(sql, { migrations: schema.migrations.slice(0, 2) }));
      expect(schemaVersion(sql)).toBe(2);
      state.storage.transactionSync(() => migrate(sql, schema));
      state.storage.transactionSync(() => migrate(sql, schema));
      expect(schemaVersion(sql)).toBe(3);
      expect(sql.exec("SELECT x, y FROM a").toArray()).toEqual([{ x: 1, y: 2 }]);
    });
  });

  it("rolls a failing migration back with the version it would have recorded", async () => {
    await runInDurableObject(env.DIRECTORY.getByName(fresh("mig-fail")), (_, state) => {
      const sql = state.storage.sql;
      const broken: Schema = { migrations: [...DIRECTORY_SCHEMA.migrations, "CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1)"] };
      expect(() => state.storage.transactionSync(() => migrate(sql, broken))).toThrow();
      expect(schemaVersion(sql)).toBe(DIRECTORY_SCHEMA.migrations.length);
      expect(sql.exec("SELECT name FROM sqlite_master WHERE name = 'b'").toArray()).toEqual([]);
    });
  });

  it("opens an audit log made before version rows as version 1, its chain intact", async () => {
    const tenant = fresh("mig-audit");
    const stub = env.AUDIT.getByName(tenant);
    await stub.append([{ actor: "a", action: "x", target: "t", outcome: "success", ip: null, at: 1 }]);
    await runInDurableObject(stub, (_, state) => {
      const sql = state.storage.sql;
      asBeforeVersions(sql);
      expect(schemaVersion(sql)).toBe(0);
      state.storage.transactionSync(() => migrate(sql, AUDIT_SCHEMA));
      expect(schemaVersion(sql)).toBe(1);
    });
    await stub.append([{ actor: "a", action: "y", target: "t", outcome: "success", ip: null, at: 2 }]);
    expect(await stub.verify()).toEqual({ ok: true, records: 2 });
  });

  it("opens a key store and the directory made before version rows as version 1, their rows intact, and upgrades them", async () => {
    const tenant = fresh("mig-keys");
    const keys = env.KEYS.getByName(tenant);
    await keys.create({ id: "AAAAAAAAAAAA", name: "old", roles: ["client"], pool: null, hash: "h", now: 5 });
    await runInDurableObject(keys, (_, state) => {
      asBeforeVersions(state.storage.sql);
      state.storage.transactionSync(() => migrate(state.storage.sql, KEY_SCHEMA));
      expect(schemaVersion(state.storage.sql)).toBe(1);
    });
    expect((await keys.list()).map((k) => k.name)).toEqual(["old"]);

    const directory = env.DIRECTORY.getByName(fresh("mig-dir"));
    await directory.register("p1", "t1", 7);
    await runInDurableObject(directory, (_, state) => {
      const sql = state.storage.sql;
      // The directory before versions had only its pool_tenants table.
      asBeforeVersions(sql);
      sql.exec("DROP TABLE shards");
      sql.exec("DROP TABLE shard_versions");
      state.storage.transactionSync(() => migrate(sql, { ...DIRECTORY_SCHEMA, migrations: DIRECTORY_SCHEMA.migrations.slice(0, 1) }));
      expect(schemaVersion(sql)).toBe(1);
      state.storage.transactionSync(() => migrate(sql, DIRECTORY_SCHEMA));
      expect(schemaVersion(sql)).toBe(DIRECTORY_SCHEMA.migrations.length);
    });
    expect(await directory.list()).toEqual([{ pool: "p1", createdAt: 7 }]);
    expect(await directory.shards("p1")).toMatchObject({ pool: "p1", version: 0, shards: [{ id: 0, state: "active" }] });
  });
});
