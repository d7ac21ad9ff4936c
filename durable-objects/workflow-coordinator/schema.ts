/** The WorkflowCoordinator's tables (numbered migrations, append-only). One object is a run or a tenant's registry. */
import { migrate as migrateStore, type Schema } from "../shared/migrations.ts";

const MIGRATIONS = [
  /* 1: a run, its steps and their tasks (elements); a tenant's registry of runs */ `
  CREATE TABLE run (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT,
    spec TEXT NOT NULL,
    principal TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    listed INTEGER NOT NULL DEFAULT 0,
    retry_at INTEGER
  ) WITHOUT ROWID;
  CREATE TABLE steps (
    key TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    planned INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    started_at INTEGER,
    finished_at INTEGER
  ) WITHOUT ROWID;
  CREATE TABLE elements (
    step TEXT NOT NULL,
    idx INTEGER NOT NULL,
    item TEXT,
    task_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('new', 'submitted', 'succeeded', 'failed', 'cancelled')),
    result TEXT,
    error TEXT,
    agent TEXT,
    cancel_pending INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (step, idx)
  ) WITHOUT ROWID;
  CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    idempotency_key TEXT UNIQUE
  ) WITHOUT ROWID;
  CREATE INDEX runs_by_created ON runs (created_at DESC, id DESC);
  `,
];

export const WORKFLOW_SCHEMA: Schema = { migrations: MIGRATIONS };

export function migrate(sql: SqlStorage): void {
  migrateStore(sql, WORKFLOW_SCHEMA);
}
