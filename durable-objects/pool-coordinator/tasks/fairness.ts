/**
 * Fair scheduling inside a pool shard (docs/scheduling.md): within one priority, deficit round robin over
 * fairness keys (submit field `fairnessKey`, scoped to its tenant; none: the tenant itself), each key served as
 * many tasks per round as its tenant's `weight`, first in first out within a key.
 *
 * State, kept by triggers so every path that queues or unqueues a task (submit, wake, retry, redrive, cancel,
 * lease, a lost lease, purge, a shard move) keeps it exact: `fair_keys` holds one row per (lane, priority,
 * tenant, key) with the key's round, how many tasks it was served in that round (`used`) and how many it has
 * queued; `fair_clock` holds the virtual time, the highest round served, of each priority and requirement class
 * (the lanes of every tenant that need the same capabilities and resources, so compete for the same agents). A
 * key that becomes active starts at that time, so idle time earns no credit and a newcomer waits at most one
 * round. A lease advances its key: `used + 1`, and at the tenant's weight the key moves to the next round.
 *
 * Reading what to serve next walks the partial index `fair_keys_order` and, per key, `tasks_fair` (lane,
 * priority, tenant, key, seq): O(log n) per task whatever the number of queued tasks. Keys of all the lanes an
 * agent accepts are compared by priority, then round, then tenant and key; one key's lanes (its tasks of different
 * requirements) are merged oldest first, the key taking the round of the lane that holds its oldest task.
 */
import type { ReadyRef } from "../queue-rules.ts";
import type { TaskContext } from "./context.ts";

/** The lanes whose keys compete for the same agents: those of one requirement, whatever their tenant. */
const CLASS_OF = (row: "NEW" | "OLD") => `(SELECT capabilities || '|' || cpu || '|' || memory_mb || '|' || gpu FROM lanes WHERE id = ${row}.lane)`;
const CLOCK_OF = (row: "NEW" | "OLD") => `(SELECT round FROM fair_clock WHERE class = ${CLASS_OF(row)} AND priority = ${row}.priority)`;

const ACTIVATE = `
    INSERT INTO fair_keys (lane, priority, tenant, fkey, round, used, queued)
      VALUES (NEW.lane, NEW.priority, NEW.tenant, NEW.fairness_key, coalesce(${CLOCK_OF("NEW")}, 0), 0, 1)
      ON CONFLICT (lane, priority, tenant, fkey) DO UPDATE SET
        used = CASE WHEN queued = 0 AND round < excluded.round THEN 0 ELSE used END,
        round = CASE WHEN queued = 0 THEN max(round, excluded.round) ELSE round END,
        queued = queued + 1;`;

const WEIGHT = "coalesce((SELECT weight FROM tenant_values WHERE tenant = OLD.tenant), 1)";
const KEY_OF_OLD = "lane = OLD.lane AND priority = OLD.priority AND tenant = OLD.tenant AND fkey = OLD.fairness_key";

export const FAIR_SCHEDULING_MIGRATION = `
  ALTER TABLE tasks ADD COLUMN fairness_key TEXT NOT NULL DEFAULT '';
  CREATE INDEX tasks_fair ON tasks (lane, priority, tenant, fairness_key, seq) WHERE status = 'queued';

  CREATE TABLE fair_keys (
    lane INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    fkey TEXT NOT NULL,
    round INTEGER NOT NULL,
    used INTEGER NOT NULL CHECK (used >= 0),
    queued INTEGER NOT NULL CHECK (queued >= 0),
    PRIMARY KEY (lane, priority, tenant, fkey)
  ) WITHOUT ROWID;
  CREATE INDEX fair_keys_order ON fair_keys (lane, priority DESC, round, tenant, fkey) WHERE queued > 0;
  CREATE TABLE fair_clock (class TEXT NOT NULL, priority INTEGER NOT NULL, round INTEGER NOT NULL, PRIMARY KEY (class, priority)) WITHOUT ROWID;
  INSERT INTO fair_keys (lane, priority, tenant, fkey, round, used, queued)
    SELECT lane, priority, tenant, '', 0, 0, count(*) FROM tasks WHERE status = 'queued' GROUP BY lane, priority, tenant;

  CREATE TRIGGER tasks_fair_insert AFTER INSERT ON tasks WHEN NEW.status = 'queued' BEGIN ${ACTIVATE}
  END;
  CREATE TRIGGER tasks_fair_enter AFTER UPDATE OF status ON tasks WHEN NEW.status = 'queued' AND OLD.status <> 'queued' BEGIN ${ACTIVATE}
  END;
  CREATE TRIGGER tasks_fair_leave AFTER UPDATE OF status ON tasks WHEN OLD.status = 'queued' AND NEW.status <> 'queued' BEGIN
    INSERT INTO fair_clock (class, priority, round)
      SELECT ${CLASS_OF("OLD")}, OLD.priority, round FROM fair_keys WHERE NEW.status = 'leased' AND ${KEY_OF_OLD}
      ON CONFLICT (class, priority) DO UPDATE SET round = max(round, excluded.round);
    UPDATE fair_keys SET
      queued = queued - 1,
      used = CASE WHEN NEW.status <> 'leased' THEN used WHEN used + 1 >= ${WEIGHT} THEN 0 ELSE used + 1 END,
      round = round + (NEW.status = 'leased' AND used + 1 >= ${WEIGHT})
    WHERE ${KEY_OF_OLD};
  END;
  CREATE TRIGGER tasks_fair_delete AFTER DELETE ON tasks WHEN OLD.status = 'queued' BEGIN
    UPDATE fair_keys SET queued = queued - 1 WHERE ${KEY_OF_OLD};
  END;
`;

interface KeyRow {
  [column: string]: SqlStorageValue;
  lane: number;
  priority: number;
  tenant: string;
  fkey: string;
  round: number;
  used: number;
}

interface KeyState {
  row: KeyRow;
  round: number;
  used: number;
  weight: number;
  buffer: number[];
  pos: number;
  after: number;
  done: boolean;
}

/** Tasks one read of a key brings in. */
const KEY_PAGE = 64;

/**
 * One fairness key of one priority over the lanes an agent accepts (a tenant's tasks of several requirements):
 * it is served oldest first across its lanes, and its place in the round is that of the lane holding its oldest
 * task, so FIFO holds inside a key whatever the requirements of its tasks.
 */
interface Group {
  priority: number;
  tenant: string;
  fkey: string;
  lanes: KeyState[];
}

/** The group's lane whose next task is the oldest, or null when none of its lanes has one. */
function headOf(ctx: TaskContext, group: Group): { lane: KeyState; seq: number } | null {
  let best: { lane: KeyState; seq: number } | null = null;
  for (let i = group.lanes.length - 1; i >= 0; i--) {
    const lane = group.lanes[i]!;
    const seq = peek(ctx, lane);
    if (seq === null) group.lanes.splice(i, 1);
    else if (best === null || seq < best.seq) best = { lane, seq };
  }
  return best;
}

function before(a: { group: Group; round: number }, b: { group: Group; round: number }): boolean {
  if (a.group.priority !== b.group.priority) return a.group.priority > b.group.priority;
  if (a.round !== b.round) return a.round < b.round;
  if (a.group.tenant !== b.group.tenant) return a.group.tenant < b.group.tenant;
  return a.group.fkey < b.group.fkey;
}

/**
 * The first `n` ready tasks of these lanes in fair order, without writing: the order in which the leases that
 * follow advance the keys (the triggers above). Only the first `n` active keys of a lane can be served within `n`
 * tasks (each key ahead of another is served at least once before it), so no more are read.
 */
export function readyFair(ctx: TaskContext, laneIds: readonly number[], n: number): (ReadyRef & { lane: number })[] {
  if (n <= 0 || laneIds.length === 0) return [];
  const weights = new Map<string, number>();
  const weightOf = (tenant: string) => {
    let w = weights.get(tenant);
    if (w === undefined) {
      w = ctx.sql.exec<{ weight: number | null }>("SELECT weight FROM tenant_values WHERE tenant = ?", tenant).toArray()[0]?.weight ?? 1;
      weights.set(tenant, w);
    }
    return w;
  };
  const groups = new Map<string, Group>();
  for (const lane of laneIds) {
    const rows = ctx.sql
      .exec<KeyRow>(
        `SELECT lane, priority, tenant, fkey, round, used FROM fair_keys INDEXED BY fair_keys_order
         WHERE lane = ? AND queued > 0 ORDER BY priority DESC, round, tenant, fkey LIMIT ?`,
        lane,
        n,
      )
      .toArray();
    for (const row of rows) {
      const id = JSON.stringify([row.priority, row.tenant, row.fkey]);
      let group = groups.get(id);
      if (!group) groups.set(id, (group = { priority: row.priority, tenant: row.tenant, fkey: row.fkey, lanes: [] }));
      group.lanes.push({ row, round: row.round, used: row.used, weight: weightOf(row.tenant), buffer: [], pos: 0, after: 0, done: false });
    }
  }
  const active = [...groups.values()];
  const out: (ReadyRef & { lane: number })[] = [];
  while (out.length < n && active.length > 0) {
    let best: { group: Group; round: number; lane: KeyState; seq: number } | null = null;
    for (let i = active.length - 1; i >= 0; i--) {
      const group = active[i]!;
      const head = headOf(ctx, group);
      if (head === null) {
        active.splice(i, 1);
        continue;
      }
      const candidate = { group, round: head.lane.round, ...head };
      if (best === null || before(candidate, best)) best = candidate;
    }
    if (best === null) break;
    const key = best.lane;
    next(ctx, key);
    out.push({ seq: best.seq, priority: key.row.priority, lane: key.row.lane });
    if (++key.used >= key.weight) {
      key.used = 0;
      key.round++;
    }
  }
  return out;
}

/** The key's next queued task without taking it, or null when it has no more. */
function peek(ctx: TaskContext, key: KeyState): number | null {
  const seq = next(ctx, key);
  if (seq !== null) key.pos--;
  return seq;
}

/** The key's next queued task, oldest first, or null when it has no more. */
function next(ctx: TaskContext, key: KeyState): number | null {
  if (key.pos === key.buffer.length) {
    if (key.done) return null;
    key.buffer = ctx.sql
      .exec<{ seq: number }>(
        `SELECT seq FROM tasks INDEXED BY tasks_fair
         WHERE lane = ? AND status = 'queued' AND priority = ? AND tenant = ? AND fairness_key = ? AND seq > ? ORDER BY seq LIMIT ?`,
        key.row.lane,
        key.row.priority,
        key.row.tenant,
        key.row.fkey,
        key.after,
        KEY_PAGE,
      )
      .toArray()
      .map((r) => r.seq);
    key.pos = 0;
    key.done = key.buffer.length < KEY_PAGE;
    if (key.buffer.length === 0) return null;
    key.after = key.buffer[key.buffer.length - 1]!;
  }
  return key.buffer[key.pos++]!;
}
