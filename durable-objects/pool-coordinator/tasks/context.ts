import type { Principal, TaskRecord } from "../../../contract/records.ts";
import type { LaneStore } from "../lanes.ts";
import type { StatsStore } from "../stats.ts";
import type { EndedLease } from "../usage/ledger.ts";
import type { StatusCountDeltas } from "./counts.ts";
import { toRecord, type TaskRow } from "./rows.ts";
import type { RateLimit } from "./gates.ts";
import type { TaskMoves } from "./transitions.ts";

/** What the task store is told by the rest of the pool. */
export interface TaskStoreOptions {
  pool: string;
  shard: number;
  random01: () => number;
  retentionMs: () => number;
  /** Most unfinished tasks this tenant may have in the pool (its own value within the pool's ceiling). */
  maxUnfinished: (tenant: string) => number;
  /** How many active shards share each tenant's quota (this shard enforces its part, `maxUnfinished`). */
  quotaShards: () => number;
  /** Whether the principal may act for an agent (it then may settle that agent's leases, whatever the tenant). */
  mayActForAgent: (principal: Principal, agentId: string) => boolean;
  /** A lease of an agent ended well (with its lease-to-completion time) or badly: its breaker and latency. */
  agentOutcome: (agentId: string, ok: boolean, latencyMs: number | null) => void;
  /** A lease ended: its held time goes to the tenant's usage (usage/ledger.ts). */
  leaseEnded?: (lease: EndedLease) => void;
  /** The pool's serving order inside a priority (tasks/fairness.ts): fair by key, or plain arrival order. */
  scheduling: () => "fair" | "fifo";
  /** A concurrency key's limit (pool config `concurrency`), or null: unlimited. */
  concurrencyLimit: (key: string) => number | null;
  /** A rate key's limit (pool config `rateLimits`), or null: unlimited. */
  rateLimit: (key: string) => RateLimit | null;
  /** Rows that referred to these R2 objects are gone (a purge): the objects go after the commit. */
  blobsReleased: (keys: readonly string[], now: number) => void;
}

/**
 * The host slice the task operations (tasks/*.ts) see: the pool's SQLite, its lanes and counters, where moves are
 * noted, and where deadlines go. Every operation is a synchronous step inside the coordinator's transaction; time
 * and randomness come in from outside, so tests drive them.
 */
export class TaskContext {
  constructor(
    readonly sql: SqlStorage,
    readonly lanes: LaneStore,
    readonly stats: StatsStore,
    readonly counts: StatusCountDeltas,
    readonly moves: TaskMoves,
    /** A deadline a change set: the alarm must be no later. */
    readonly timer: (at: number | null) => void,
    readonly opts: TaskStoreOptions,
  ) {}

  record(row: TaskRow): TaskRecord {
    return toRecord(row, this.opts.pool, this.opts.shard, this.lanes.get(row.lane));
  }

  row(id: string): TaskRow | undefined {
    return this.sql.exec<TaskRow>("SELECT * FROM tasks WHERE id = ?", id).toArray()[0];
  }

  rowBySeq(seq: number): TaskRow {
    return this.sql.exec<TaskRow>("SELECT * FROM tasks WHERE seq = ?", seq).one();
  }
}
