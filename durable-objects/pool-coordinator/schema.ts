import { BLOB_DELETES_MIGRATION } from "./blobs/deletes.ts";
import { WORKFLOW_CALLBACKS_MIGRATION } from "./workflows/callbacks.ts";
import { CACHE_FILLS_MIGRATION } from "./cache/fills.ts";
import { GOSSIP_MIGRATION } from "./gossip/store.ts";
import { USAGE_MIGRATION } from "./usage/ledger.ts";
import { FAIR_SCHEDULING_MIGRATION } from "./tasks/fairness.ts";
import { GATES_MIGRATION } from "./tasks/gates.ts";
import { migrate as migrateStore, tableExists, type Schema } from "../shared/migrations.ts";

/**
 * The pool coordinator's SQLite schema. Migrations are numbered and append-only; each runs once, inside
 * the transaction that records it (durable-objects/shared/migrations.ts).
 *
 * Cost rules this schema keeps: the next task to lease is the head of a partial index over queued tasks
 * only, per lane; the next timer is the minimum of a partial index over rows that have one. Neither grows
 * with the number of finished tasks.
 */
const STATUS_CHECK = "status IN ('waiting','queued','leased','succeeded','dead','cancelled')";
const STATE_CHECK = "state IN ('pending','initializing','running','paused','scaling','terminating','failed','recovering')";

export const MIGRATIONS: readonly string[] = [
  /* 1: tasks, lanes, dependencies, agents, counters */ `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

  CREATE TABLE lanes (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    cpu REAL NOT NULL CHECK (cpu >= 0),
    memory_mb INTEGER NOT NULL CHECK (memory_mb >= 0),
    gpu INTEGER NOT NULL CHECK (gpu >= 0),
    UNIQUE (tenant, capabilities, cpu, memory_mb, gpu)
  );

  CREATE TABLE tasks (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    lane INTEGER NOT NULL REFERENCES lanes (id),
    tenant TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL CHECK (${STATUS_CHECK}),
    priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 9),
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    timeout_ms INTEGER NOT NULL CHECK (timeout_ms > 0),
    idempotency_key TEXT,
    depends_on TEXT NOT NULL DEFAULT '[]',
    pending_deps INTEGER NOT NULL DEFAULT 0 CHECK (pending_deps >= 0),
    result TEXT,
    error TEXT,
    agent_id TEXT,
    lease_token TEXT,
    lease_expires_at INTEGER,
    run_after INTEGER,
    timer_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    CHECK ((status = 'leased') = (lease_token IS NOT NULL)),
    CHECK (status <> 'leased' OR (agent_id IS NOT NULL AND lease_expires_at IS NOT NULL AND timer_at IS NOT NULL)),
    CHECK ((status IN ('succeeded','dead','cancelled')) = (finished_at IS NOT NULL)),
    CHECK (status <> 'queued' OR (pending_deps = 0 AND timer_at IS NULL))
  );
  CREATE INDEX tasks_ready ON tasks (lane, priority DESC, seq) WHERE status = 'queued';
  CREATE INDEX tasks_timer ON tasks (timer_at) WHERE timer_at IS NOT NULL;
  CREATE UNIQUE INDEX tasks_idempotency ON tasks (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;
  CREATE INDEX tasks_by_status ON tasks (status, seq);
  CREATE INDEX tasks_by_agent ON tasks (agent_id) WHERE status = 'leased';

  -- Unfinished dependencies only: a row goes when its dependency ends.
  CREATE TABLE task_deps (
    dep_seq INTEGER NOT NULL,
    task_seq INTEGER NOT NULL,
    PRIMARY KEY (dep_seq, task_seq)
  ) WITHOUT ROWID;

  -- Counts by tenant and status, kept exact by triggers so stats never scan the tasks table.
  CREATE TABLE status_counts (
    tenant TEXT NOT NULL,
    status TEXT NOT NULL CHECK (${STATUS_CHECK}),
    n INTEGER NOT NULL CHECK (n >= 0),
    PRIMARY KEY (tenant, status)
  ) WITHOUT ROWID;
  CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO status_counts (tenant, status, n) VALUES (NEW.tenant, NEW.status, 1)
      ON CONFLICT (tenant, status) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER tasks_count_update AFTER UPDATE OF status ON tasks WHEN OLD.status <> NEW.status BEGIN
    UPDATE status_counts SET n = n - 1 WHERE tenant = OLD.tenant AND status = OLD.status;
    INSERT INTO status_counts (tenant, status, n) VALUES (NEW.tenant, NEW.status, 1)
      ON CONFLICT (tenant, status) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks BEGIN
    UPDATE status_counts SET n = n - 1 WHERE tenant = OLD.tenant AND status = OLD.status;
  END;

  CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    tenant TEXT,
    state TEXT NOT NULL CHECK (${STATE_CHECK}),
    capabilities TEXT NOT NULL,
    cpu REAL NOT NULL,
    memory_mb INTEGER NOT NULL,
    gpu INTEGER NOT NULL,
    max_concurrency INTEGER NOT NULL CHECK (max_concurrency >= 1),
    load TEXT NOT NULL,
    metadata TEXT NOT NULL,
    breaker TEXT NOT NULL DEFAULT 'closed' CHECK (breaker IN ('closed','open','half_open')),
    last_heartbeat_at INTEGER NOT NULL,
    registered_at INTEGER NOT NULL,
    timer_at INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX agents_timer ON agents (timer_at) WHERE timer_at IS NOT NULL;

  -- Monotonic event counters (Prometheus counters) and short-window buckets for rates and latency.
  CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE rate_buckets (
    bucket INTEGER NOT NULL,
    name TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (bucket, name)
  ) WITHOUT ROWID;
  CREATE TABLE duration_buckets (
    bucket INTEGER NOT NULL,
    le INTEGER NOT NULL,
    n INTEGER NOT NULL,
    sum_ms INTEGER NOT NULL,
    PRIMARY KEY (bucket, le)
  ) WITHOUT ROWID;
  `,
  /* 2: finding the dependencies of a task (cancel, purge) without scanning every dependency */ `
  CREATE INDEX task_deps_by_task ON task_deps (task_seq);
  `,
  /* 3: tenants that use the pool (reads by other tenants answer 404), and who registered each agent */ `
  CREATE TABLE tenants (
    tenant TEXT PRIMARY KEY,
    first_at INTEGER NOT NULL,
    listed INTEGER NOT NULL DEFAULT 0 CHECK (listed IN (0, 1))
  ) WITHOUT ROWID;
  INSERT OR IGNORE INTO tenants (tenant, first_at) SELECT DISTINCT tenant, 0 FROM status_counts;
  ALTER TABLE agents ADD COLUMN registered_by TEXT;
  `,
  /* 4: push credits, circuit breaker and latency of each agent; when each lease began */ `
  ALTER TABLE agents ADD COLUMN credits INTEGER NOT NULL DEFAULT 0 CHECK (credits >= 0);
  ALTER TABLE agents ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE agents ADD COLUMN breaker_until INTEGER;
  ALTER TABLE agents ADD COLUMN latency_ewma_ms REAL;
  ALTER TABLE tasks ADD COLUMN leased_at INTEGER;
  `,
  /* 5: finding the agents that hold credits (push candidates) without reading every agent */ `
  CREATE INDEX agents_with_credits ON agents (agent_id) WHERE credits > 0;
  `,
  /* 6: status_counts kept by the task store (net changes written once per transaction), not by triggers per row */ `
  DROP TRIGGER tasks_count_insert;
  DROP TRIGGER tasks_count_update;
  DROP TRIGGER tasks_count_delete;
  `,
  /*
   * 7: leased tasks leave the status index (tasks_by_agent holds them): a lease writes 3 rows instead of 4
   * (`rowsWritten` of the statement in workerd; rows written are what Cloudflare bills), and both it and the
   * completion change one index entry fewer. The condition is spelled as OR terms: SQLite uses a partial index for
   * `status = '<literal>'` only when that is one of the terms.
   */ `
  DROP INDEX tasks_by_status;
  CREATE INDEX tasks_by_status ON tasks (status, seq)
    WHERE status = 'waiting' OR status = 'queued' OR status = 'succeeded' OR status = 'dead' OR status = 'cancelled';
  `,
  /* 8: each tenant's own values in the pool: quota within the pool's ceiling, fair-share weight, GPU-seconds per hour */ `
  CREATE TABLE tenant_values (
    tenant TEXT PRIMARY KEY,
    max_unfinished_granted INTEGER CHECK (max_unfinished_granted >= 1),
    max_unfinished_own INTEGER CHECK (max_unfinished_own >= 1),
    weight INTEGER CHECK (weight BETWEEN 1 AND 1000),
    gpu_seconds_per_hour REAL CHECK (gpu_seconds_per_hour >= 0)
  ) WITHOUT ROWID;
  `,
  /*
   * 9: shards. Tasks handed to another shard by a drain wait in moves_out until the target has them, then leave a
   * forwarding record in moved (lookups by their old id keep working); an agent is a member of every shard of its
   * pool, and home to one.
   */ `
  CREATE TABLE moves_out (
    id TEXT PRIMARY KEY,
    target INTEGER NOT NULL,
    task TEXT NOT NULL,
    at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX moves_out_by_target ON moves_out (target);
  CREATE TABLE moved (
    id TEXT PRIMARY KEY,
    shard INTEGER NOT NULL,
    at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX moved_by_at ON moved (at);
  ALTER TABLE agents ADD COLUMN home INTEGER NOT NULL DEFAULT 1 CHECK (home IN (0, 1));
  `,
  /* 10: the shard's shared state (gossip/store.ts) */ GOSSIP_MIGRATION,
  /* 11: the output cache's outbox (cache/fills.ts) */ CACHE_FILLS_MIGRATION,
  /* 12: R2 objects of purged tasks to delete (blobs/deletes.ts) */ BLOB_DELETES_MIGRATION,
  /* 13: ends of workflow tasks to report to their runs (workflows/callbacks.ts) */ WORKFLOW_CALLBACKS_MIGRATION,
  /* 14: held task-seconds and GPU-seconds per tenant and hour, and per tenant since the start (usage/ledger.ts) */ USAGE_MIGRATION,
  /* 15: fair scheduling: round robin over fairness keys by weight (tasks/fairness.ts) */ FAIR_SCHEDULING_MIGRATION,
  /* 16: concurrency and rate keys, debounce (tasks/gates.ts, tasks/submit.ts) */ GATES_MIGRATION,
];

export const POOL_SCHEMA: Schema = { migrations: MIGRATIONS };

/** Whether any schema exists yet: a pool that was never written to has no tables at all. */
export function schemaExists(sql: SqlStorage): boolean {
  return tableExists(sql, "meta");
}

/** Applies the migrations not yet applied. Call inside a transaction. */
export function migrate(sql: SqlStorage): void {
  migrateStore(sql, POOL_SCHEMA);
}
