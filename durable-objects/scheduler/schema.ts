/** The Scheduler's tables (numbered migrations, append-only). One object per tenant: its schedules and their runs. */
import { migrate as migrateStore, type Schema } from "../shared/migrations.ts";

const MIGRATIONS = [
  /* 1: schedules, and their runs (a slot claimed, then submitted or skipped) */ `
  CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    target TEXT NOT NULL,
    overlap TEXT NOT NULL CHECK (overlap IN ('skip', 'allow')),
    catch_up TEXT NOT NULL CHECK (catch_up IN ('skip', 'one')),
    principal TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    cursor INTEGER NOT NULL,
    next_run_at INTEGER,
    last_run_at INTEGER,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX schedules_by_next ON schedules (next_run_at) WHERE paused = 0 AND next_run_at IS NOT NULL;
  CREATE INDEX schedules_by_created ON schedules (created_at, id);
  CREATE TABLE runs (
    schedule_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    trigger INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'submitted', 'skipped')),
    reason TEXT,
    task_id TEXT,
    workflow_id TEXT,
    at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at INTEGER,
    PRIMARY KEY (schedule_id, trigger, slot)
  ) WITHOUT ROWID;
  CREATE INDEX runs_by_at ON runs (schedule_id, at);
  CREATE INDEX runs_pending ON runs (retry_at) WHERE status = 'pending';
  `,
];

export const SCHEDULER_SCHEMA: Schema = { migrations: MIGRATIONS };

export function migrate(sql: SqlStorage): void {
  migrateStore(sql, SCHEDULER_SCHEMA);
}
