/**
 * Calls about tasks that exist: by id at the shard the id names (following a task a drain moved, calls.ts), many
 * settlements grouped by shard in one call each, and a pool's task list as a merged cursor over its shards.
 */
import { ApiError, unwrap, type ErrorBody, type Outcome } from "../../contract/errors.ts";
import { parseTaskId, shardName } from "../../contract/ids.ts";
import type { ListPage, Principal, Settlement, SettlementResult, TaskRecord, TaskStatus } from "../../contract/records.ts";
import { ANSWER_BLOB_BUDGET_BYTES } from "../../lib/security/blob-refs.ts";
import { openField, openTask, openTasks } from "../../lib/security/sealing.ts";
import type { OptionalSecrets } from "../env.ts";
import type { Calls } from "./calls.ts";
import { decodeCursor, encodeCursor, mergePages, type MergedCursor } from "./merge.ts";

/** Rounds of following settlements to the shard a drain moved their tasks to. */
const SETTLE_HOPS = 3;

export class Tasks {
  private readonly env: Env & OptionalSecrets;
  private readonly calls: Calls;

  constructor(env: Env & OptionalSecrets, calls: Calls) {
    this.env = env;
    this.calls = calls;
  }

  private async opened<T extends TaskRecord>(outcome: Outcome<T>): Promise<T> {
    return openTask(this.env, unwrap(outcome));
  }

  async get(caller: Principal, id: string): Promise<TaskRecord> {
    return this.opened(await this.calls.forTask(id, (c) => c.getTask(caller, id)));
  }

  /**
   * The payload of a task whose current lease the caller holds, as JSON text: for an agent whose lease or push left
   * it out (docs/payloads.md). 409 lease_lost once the lease is not current.
   */
  async leasedPayload(caller: Principal, id: string, leaseToken: string): Promise<string> {
    const task = unwrap(await this.calls.forTask(id, (c) => c.getTask(caller, id, leaseToken)));
    return openField(this.env, task.tenant, "payload", task.payload);
  }

  async waitResult(caller: Principal, id: string, waitMs: number): Promise<TaskRecord> {
    return this.opened(await this.calls.forTask(id, (c) => c.waitResult(caller, id, waitMs)));
  }

  async cancel(caller: Principal, id: string): Promise<TaskRecord> {
    return this.opened(await this.calls.forTask(id, (c) => c.cancel(caller, id)));
  }

  async complete(caller: Principal, id: string, leaseToken: string, resultJson: string): Promise<TaskRecord> {
    return this.opened(await this.calls.forTask(id, (c) => c.complete(caller, id, leaseToken, resultJson)));
  }

  async fail(caller: Principal, id: string, leaseToken: string, errorJson: string, retryable: boolean): Promise<TaskRecord> {
    return this.opened(await this.calls.forTask(id, (c) => c.fail(caller, id, leaseToken, errorJson, retryable)));
  }

  async extend(caller: Principal, id: string, leaseToken: string, extendMs: number | null): Promise<number> {
    return unwrap(await this.calls.forTask(id, (c) => c.extend(caller, id, leaseToken, extendMs)));
  }

  /**
   * Settles many leases: one call per shard. An item whose task id does not parse, or names a pool the caller's
   * agent credential is not bound to, is not found. A shard refuses as a whole when its pool does not exist
   * (not_found) or requires a client certificate the caller lacks (forbidden): its items report that code, and a
   * refusal that left nothing applied anywhere is the answer. An item whose task a drain moved is sent on to the
   * shard it went to.
   */
  async settle(caller: Principal, items: readonly Settlement[], boundPool: string | null): Promise<SettlementResult[]> {
    const results = new Array<SettlementResult>(items.length);
    let pending: { index: number; pool: string; shard: number }[] = [];
    items.forEach((item, index) => {
      const home = parseTaskId(item.id);
      if (home && (boundPool === null || home.pool === boundPool)) pending.push({ index, ...home });
      else results[index] = { id: item.id, error: { code: "not_found", message: `no task ${item.id}` } };
    });
    let applied = false;
    const refusals: ErrorBody[] = [];
    for (let hop = 0; pending.length > 0; hop++) {
      const groups = new Map<string, { pool: string; shard: number; indexes: number[] }>();
      for (const p of pending) {
        const key = shardName(p.pool, p.shard);
        const g = groups.get(key) ?? { pool: p.pool, shard: p.shard, indexes: [] };
        g.indexes.push(p.index);
        groups.set(key, g);
      }
      const next: typeof pending = [];
      await Promise.all(
        [...groups.values()].map(async ({ pool, shard, indexes }) => {
          const part = indexes.map((i) => items[i]!);
          const outcome = await this.calls.on(pool, shard, (c) => c.settle(caller, part));
          if (outcome.ok) applied = true;
          else if (outcome.error.code === "forbidden") refusals.push(outcome.error);
          indexes.forEach((index, k) => {
            if (!outcome.ok) {
              results[index] = { id: part[k]!.id, error: { code: outcome.error.code === "forbidden" ? "forbidden" : "not_found", message: outcome.error.message } };
              return;
            }
            const r = outcome.value[k]!;
            if ("error" in r && r.movedTo !== undefined && hop < SETTLE_HOPS) next.push({ index, pool, shard: r.movedTo });
            else results[index] = "error" in r ? { id: r.id, error: r.error } : r;
          });
        }),
      );
      pending = next;
    }
    const refusal = refusals[0];
    if (refusal !== undefined && !applied) throw ApiError.fromBody(refusal);
    return results;
  }

  /**
   * A page of the pool's tasks over all its shards (retired ones too), oldest first within what each page holds
   * (merge.ts). A
   * single-shard pool answers its shard's own cursor, as before; a cursor of that kind keeps working on shard 0
   * after shards are added (the other shards start from their beginning).
   */
  async list(caller: Principal, pool: string, status: TaskStatus | null, limit: number, cursor: string | null): Promise<ListPage> {
    // Every shard that ever served the pool: a retired one holds its finished tasks until they are purged.
    const serving = (await this.calls.placement.list(pool)).shards;
    if (serving.length === 1 && (cursor === null || decodeCursor(cursor) === null)) {
      const page = unwrap(await this.calls.on(pool, serving[0]!.id, (c) => c.listTasks(caller, status, limit, cursor)));
      return { tasks: await openTasks(this.env, page.tasks, undefined, ANSWER_BLOB_BUDGET_BYTES), cursor: page.cursor };
    }
    let from: MergedCursor;
    if (cursor === null) from = {};
    else {
      const decoded = decodeCursor(cursor);
      from = decoded ?? { 0: cursor };
    }
    // A shard the cursor says is exhausted (null) is not asked again; one it does not name starts from its beginning.
    const asked = serving.filter((s) => from[s.id] !== null);
    const pages = await Promise.all(
      asked.map(async (s) => {
        const before = from[s.id] || null;
        const out = await this.calls.on(pool, s.id, (c) => c.listTasks(caller, status, limit, before));
        // A shard never written to has no tasks: its part of the list is empty.
        if (!out.ok && out.error.code === "not_found" && s.id !== 0) return { shard: s.id, tasks: [], after: [], cursor: null, before };
        const page = unwrap(out);
        return { shard: s.id, tasks: page.tasks, after: page.after ?? [], cursor: page.cursor, before };
      }),
    );
    const merged = mergePages(pages, limit);
    if (merged.cursor !== null) {
      const next = decodeCursor(merged.cursor)!;
      for (const s of serving) if (from[s.id] === null) next[s.id] = null;
      merged.cursor = encodeCursor(next);
    }
    return { tasks: await openTasks(this.env, merged.tasks, undefined, ANSWER_BLOB_BUDGET_BYTES), cursor: merged.cursor };
  }
}
