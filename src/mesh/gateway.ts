/**
 * The gateway: the one scatter / gather between the Worker's routes and the pool coordinators. It seals payloads,
 * groups the items of a call by the shard that owns them (placement.ts), calls each shard once, puts the answers
 * back in input order (re-addressing a shard's field errors to the caller's indexes) and opens what comes back.
 * Routes validate, call the gateway, and present.
 */
import { ApiError, unwrap, type ErrorBody, type ErrorDetails, type FieldProblem, type Outcome } from "../../contract/errors.ts";
import { isPoolName, parseTaskId, poolOfType, shardName } from "../../contract/ids.ts";
import type { LeasedTask, ListPage, Principal, Requirements, Settlement, SettlementResult, SubmitOutcome, TaskInput, TaskRecord, TaskStatus } from "../../contract/records.ts";
import { openTask, openTasks, sealPayload } from "../../lib/security/sealing.ts";
import type { OptionalSecrets } from "../env.ts";
import { Placement } from "./placement.ts";

/** A validated submission (the route's schema applied its defaults), payload not yet JSON text. */
export interface Submission {
  type: string;
  payload?: unknown;
  priority: number;
  pool?: string | undefined;
  requires?: Partial<Requirements> | undefined;
  idempotencyKey?: string | null | undefined;
  maxAttempts: number;
  timeoutMs: number;
  delayMs: number;
  dependsOn: string[];
}

/** A submission in its pool and shard, payload in clear. */
interface Placed {
  pool: string;
  shard: number;
  input: TaskInput;
}

interface Group<T> {
  pool: string;
  shard: number;
  indexes: number[];
  items: T[];
}

/** Items grouped by the shard they go to, each group keeping the input indexes of its items. */
function groupByShard<T>(items: readonly T[], homeOf: (item: T, index: number) => { pool: string; shard: number } | null): Group<T>[] {
  const groups = new Map<string, Group<T>>();
  items.forEach((item, index) => {
    const home = homeOf(item, index);
    if (!home) return;
    const key = shardName(home.pool, home.shard);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { ...home, indexes: [], items: [] }));
    group.indexes.push(index);
    group.items.push(item);
  });
  return [...groups.values()];
}

/** Problems a shard reported with indexes into its slice, re-addressed to the whole batch. */
function readdress(details: ErrorDetails | undefined, indexes: readonly number[]): ErrorDetails | undefined {
  if (!Array.isArray(details)) return details;
  return details.map((d) => (d.index === undefined ? d : { field: `tasks.${indexes[d.index]}.${d.field}`, message: d.message }));
}

export class Gateway {
  readonly placement: Placement;

  private readonly env: Env & OptionalSecrets;

  constructor(env: Env & OptionalSecrets) {
    this.env = env;
    this.placement = new Placement(env);
  }

  /**
   * Submits tasks: one call per shard, each shard's part one transaction. Several shards cannot commit together,
   * so what a shard could still refuse as a whole (a missing dependency, the quota) is checked on every shard
   * before any commits; a concurrent submit can still take the room in between, and that shard then refuses
   * alone. Answers in input order, payloads in clear. `batch`: field errors are addressed as `tasks.<i>.<field>`.
   */
  async submit(caller: Principal, submissions: readonly Submission[], batch: boolean): Promise<SubmitOutcome[]> {
    const placed = await this.place(submissions, batch);
    // What this request sealed, envelope -> plaintext: the answer shows the tasks it created without decrypting.
    const sealed = new Map<string, string>();
    const inputs = await Promise.all(
      placed.map(async ({ input }) => {
        const payload = await sealPayload(this.env, caller.tenant, input.payload);
        sealed.set(payload, input.payload);
        return { ...input, payload };
      }),
    );
    const groups = groupByShard(inputs, (_, i) => placed[i]!);
    if (groups.length > 1) await this.precheck(caller, groups);
    const out = new Array<SubmitOutcome>(placed.length);
    await Promise.all(
      groups.map(async ({ pool, shard, indexes, items }) => {
        const result = await this.placement.coordinator(pool, shard).submit(caller, items, items.map((t) => sealed.get(t.payload)!));
        if (!result.ok) throw new ApiError(result.error.code, result.error.message, batch ? readdress(result.error.details, indexes) : result.error.details);
        const opened = await Promise.all(result.value.map(async (o) => ({ task: await openTask(this.env, o.task, sealed), created: o.created })));
        opened.forEach((o, k) => (out[indexes[k]!] = o));
      }),
    );
    return out;
  }

  /**
   * Each submission in its pool and shard, with its defaults: the pool named or taken from the type, a shard that
   * holds its dependencies (a coordinator knows only its own tasks). Refuses the whole call with every problem.
   */
  private async place(submissions: readonly Submission[], batch: boolean): Promise<Placed[]> {
    const problems: FieldProblem[] = [];
    const placed: Placed[] = [];
    for (const [i, task] of submissions.entries()) {
      const prefix = batch ? `tasks.${i}.` : "";
      const pool = poolOfType(task.type, task.pool);
      if (!isPoolName(pool)) {
        problems.push({ field: `${prefix}pool`, message: `the pool taken from type "${task.type}" is not a valid pool name; pass pool explicitly` });
        continue;
      }
      const input: TaskInput = {
        type: task.type,
        payload: JSON.stringify(task.payload ?? {}),
        priority: task.priority,
        requires: { capabilities: [], cpu: 0, memoryMb: 0, gpu: 0, ...task.requires },
        idempotencyKey: task.idempotencyKey ?? null,
        maxAttempts: task.maxAttempts,
        timeoutMs: task.timeoutMs,
        delayMs: task.delayMs,
        dependsOn: task.dependsOn,
      };
      const shard = await this.placement.shardFor(pool, input);
      const wrong = task.dependsOn.flatMap((dep, j) => {
        const owner = parseTaskId(dep);
        return owner && owner.pool === pool && owner.shard === shard ? [] : [{ field: `${prefix}dependsOn.${j}`, message: `${dep} is not a task of pool ${pool}` }];
      });
      problems.push(...wrong);
      placed.push({ pool, shard, input });
    }
    if (problems.length > 0) throw new ApiError("invalid_request", batch ? "some tasks are not valid; none was submitted" : "the task is not valid", problems);
    return placed;
  }

  /** Before a submit over several shards commits anywhere: every shard's dependencies exist, every quota has room. */
  private async precheck(caller: Principal, groups: readonly Group<TaskInput>[]): Promise<void> {
    if (groups.some((g) => g.items.some((t) => t.dependsOn.length > 0))) {
      const missing = await Promise.all(
        groups.map(async ({ pool, shard, items }) => {
          const found = unwrap(await this.placement.coordinator(pool, shard).missingDependencies(caller, items.flatMap((t) => t.dependsOn)));
          return found.map((id) => ({ field: `tasks (pool ${pool})`, message: `dependsOn names ${id}, which does not exist` }));
        }),
      );
      if (missing.flat().length > 0) throw new ApiError("invalid_request", "some dependencies do not exist; none was submitted", missing.flat());
    }
    const checks = await Promise.all(groups.map(({ pool, shard, items }) => this.placement.coordinator(pool, shard).checkQuota(caller, items.map((t) => t.idempotencyKey))));
    for (const check of checks) unwrap(check);
  }

  private owner(id: string) {
    const { pool, shard } = this.placement.ownerOf(id);
    return this.placement.coordinator(pool, shard);
  }

  private async opened<T extends TaskRecord>(outcome: Outcome<T>): Promise<T> {
    return openTask(this.env, unwrap(outcome));
  }

  async task(caller: Principal, id: string): Promise<TaskRecord> {
    return this.opened(await this.owner(id).getTask(caller, id));
  }

  async waitResult(caller: Principal, id: string, waitMs: number): Promise<TaskRecord> {
    return this.opened(await this.owner(id).waitResult(caller, id, waitMs));
  }

  async cancel(caller: Principal, id: string): Promise<TaskRecord> {
    return this.opened(await this.owner(id).cancel(caller, id));
  }

  async complete(caller: Principal, id: string, leaseToken: string, resultJson: string): Promise<TaskRecord> {
    return this.opened(await this.owner(id).complete(caller, id, leaseToken, resultJson));
  }

  async fail(caller: Principal, id: string, leaseToken: string, errorJson: string, retryable: boolean): Promise<TaskRecord> {
    return this.opened(await this.owner(id).fail(caller, id, leaseToken, errorJson, retryable));
  }

  async extend(caller: Principal, id: string, leaseToken: string, extendMs: number | null): Promise<number> {
    return unwrap(await this.owner(id).extend(caller, id, leaseToken, extendMs));
  }

  /**
   * Settles many leases: one call per shard. An item whose task id does not parse, or names a pool the caller's
   * agent credential is not bound to, is not found. A shard refuses as a whole when its pool does not exist
   * (not_found) or requires a client certificate the caller lacks (forbidden): its items report that code, and a
   * refusal that left nothing applied anywhere is the answer.
   */
  async settle(caller: Principal, items: readonly Settlement[], boundPool: string | null): Promise<SettlementResult[]> {
    const results = new Array<SettlementResult>(items.length);
    const groups = groupByShard(items, (item, i) => {
      const home = parseTaskId(item.id);
      if (home && (boundPool === null || home.pool === boundPool)) return home;
      results[i] = { id: item.id, error: { code: "not_found", message: `no task ${item.id}` } };
      return null;
    });
    let applied = false;
    const refusals: ErrorBody[] = [];
    await Promise.all(
      groups.map(async ({ pool, shard, indexes, items: part }) => {
        const outcome = await this.placement.coordinator(pool, shard).settle(caller, part);
        if (outcome.ok) applied = true;
        else if (outcome.error.code === "forbidden") refusals.push(outcome.error);
        indexes.forEach((index, k) => {
          results[index] = outcome.ok
            ? outcome.value[k]!
            : { id: part[k]!.id, error: { code: outcome.error.code === "forbidden" ? "forbidden" : "not_found", message: outcome.error.message } };
        });
      }),
    );
    const refusal = refusals[0];
    if (refusal !== undefined && !applied) throw ApiError.fromBody(refusal);
    return results;
  }

  /** Leases for an agent of its pool's home shard, payloads in clear. */
  async lease(caller: Principal, pool: string, agentId: string, max: number, waitMs: number): Promise<LeasedTask[]> {
    return openTasks(this.env, unwrap(await this.placement.home(pool).lease(caller, agentId, max, waitMs)));
  }

  async listTasks(caller: Principal, pool: string, status: TaskStatus | null, limit: number, cursor: string | null): Promise<ListPage> {
    const page = unwrap(await this.placement.home(pool).listTasks(caller, status, limit, cursor));
    return { tasks: await openTasks(this.env, page.tasks), cursor: page.cursor };
  }

}
