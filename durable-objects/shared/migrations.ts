/**
 * One numbered migration mechanism for every Durable Object's SQLite storage. A schema is a list of migrations,
 * append-only; each runs once, in the transaction that records it, and the version lives in the object's `meta`
 * table (`schema_version`). A store created before it had a version row (the objects that used
 * `CREATE TABLE IF NOT EXISTS`) counts as version 1 and opens with its data intact.
 */
export interface Schema {
  /** Migration N is `migrations[N - 1]`: SQL run as one script. */
  readonly migrations: readonly string[];
  /** Whether the store holds tables of version 1 made before version rows existed (read only when there is none). */
  readonly predatesVersions?: (sql: SqlStorage) => boolean;
}

const META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID";

export function tableExists(sql: SqlStorage, name: string): boolean {
  return sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0;
}

/** The version a store is at: 0 when it has none (empty, or made before versions existed). */
export function schemaVersion(sql: SqlStorage): number {
  if (!tableExists(sql, "meta")) return 0;
  return Number(sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").toArray()[0]?.value ?? 0);
}

function setVersion(sql: SqlStorage, version: number): void {
  sql.exec("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", String(version));
}

/** Brings the store to the schema's last version. Call inside a transaction; running it again changes nothing. */
export function migrate(sql: SqlStorage, schema: Schema): void {
  let current = schemaVersion(sql);
  if (current === 0 && schema.predatesVersions?.(sql)) {
    sql.exec(META);
    setVersion(sql, 1);
    current = 1;
  }
  for (let version = current + 1; version <= schema.migrations.length; version++) {
    sql.exec(META);
    sql.exec(schema.migrations[version - 1]!);
    setVersion(sql, version);
  }
}
