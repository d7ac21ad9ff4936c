/**
 * Submitting: each new task goes to a shard of its pool, then one call per shard commits that shard's part.
 * - A task with dependencies goes where they are (a coordinator knows only its own tasks).
 * - A task with an idempotency key, in a pool that has had several shards, claims the key in the pool's key index
 *   first, with the id it will have: a repeat of the key finds the first task on whatever shard holds it.
 * - A task with a debounce, concurrency or rate key goes to the key's shard (highest random weight over the active
 *   shards): the key's limits and its debounce hold across the pool, and a new shard takes over only its share.
 * - Every other task goes to the active shard with the lowest expected time to start (routing.ts); a batch spreads
 *   by the same rule, each task counted as queued where it went.
 * - A shard that drains, or where the tenant's share of the quota is used up, refuses: its tasks go to the next
 *   best shard ("retry"). Several shards cannot commit together, so what a shard could refuse as a whole is
 *   checked on every shard of the call first; a concurrent submit can still take the room in between.
 */
import { ApiError, unwrap, type FieldProblem } from "../../contract/errors.ts";
import { formatTaskId, isPoolName, parseTaskId, poolOfType, shardName } from "../../contract/ids.ts";
import type { Principal, Region, RouteReason, ShardRecord, SubmitOutcome, TaskInput, TaskRecord } from "../../contract/records.ts";
import { fnv1a32 } from "../../lib/embed/tokenizer.ts";
import { random01, randomToken } from "../../lib/random.ts";
import { blobKeysOf, isBlobRef } from "../../lib/security/blob-refs.ts";
import { dropBlobs, openTask, sealPayload } from "../../lib/security/sealing.ts";
import type { OptionalSecrets } from "../env.ts";
import { draining, overQuota, type Calls } from "./calls.ts";
import { router } from "./routing.ts";
import { groupByShard, isKeysIndexed, readdress, sharedStateFields, type Group, type Item, type Refusal, type Submission } from "./submit-parts.ts";

export type { Submission } from "./submit-parts.ts";

/**
 * The quota room each shard last reported for a tenant (`<pool>#<shard>\n<tenant>`), in this isolate. A submit over
 * several shards checks the quota on every shard first, except where the room known from the last 2 s is at least
 * four times what the call adds there: a check then would only cost a call (it is best effort anyway: a
 * concurrent submit can take the room in between, and the shard then refuses alone).
 */
const rooms = new Map<string, { room: number; at: number }>();
const ROOM_FRESH_MS = 2_000;
const ROOM_MARGIN = 4;

/** A claim younger than this whose task is not found yet belongs to a submit still under way. */
export const CLAIM_PENDING_MS = 30_000;
/** Rounds of re-placing tasks a shard refused (it drains, or its quota share is used up). */
const PLACEMENT_ROUNDS = 4;


export class Submitter {
  /** The shard this request's previous task of each pool went to (ties keep it: a batch in one call). */
  private readonly lastShard = new Map<string, number>();
  private readonly env: Env & OptionalSecrets;
  private readonly calls: Calls;

  constructor(env: Env & OptionalSecrets, calls: Calls) {
    this.env = env;
    this.calls = calls;
  }

  /** Answers in input order, payloads in clear, with the shard of each task. */
  async submit(caller: Principal, submissions: readonly Submission[], batch: boolean, region: Region | null): Promise<SubmitOutcome[]> {
    const validated = this.validate(submissions, batch);
    const out = new Array<SubmitOutcome>(validated.length);
    // Answered from the output cache (cache/submit.ts): in place, and nothing to submit.
    const items = validated.filter((i) => {
      const hit = submissions[i.index]!.hit;
      if (hit) out[i.index] = hit;
      return !hit;
    });
    const pools = [...new Set(items.map((i) => i.pool))];
    const active = new Map<string, readonly ShardRecord[]>();
    const fresh: Item[] = [];
    const repeats: Item[] = [];
    try {
      await Promise.all(
        pools.map(async (pool) => {
          const mine = items.filter((i) => i.pool === pool);
          const list = await this.calls.placement.list(pool);
          const shards = list.shards.filter((s) => s.state === "active");
          active.set(pool, shards);
          await this.pinToDependencies(caller, mine, shards, batch);
          pinToKeys(caller.tenant, mine, shards);
          for (const item of mine) if (!item.pinned) this.route(pool, item, shards, region, new Set());
          const later = list.version > 0 ? await this.claimKeys(caller, pool, mine, out) : [];
          repeats.push(...later);
          fresh.push(...mine.filter((i) => out[i.index] === undefined && !later.includes(i)));
        }),
      );
      await this.commit(caller, fresh, active, region, batch, out);
    } catch (err) {
      // Claims whose tasks were never created are given back, so a retry of the same key can succeed.
      await this.release(caller, items.filter((i) => i.claimed && out[i.index]?.task.id !== i.input.id));
      throw err;
    } finally {
      // Payloads written to R2 for tasks that were surely not created (refused, or a repeated key) belong to no row;
      // one whose shard call threw may have committed, so its object stays (an orphan at worst).
      const orphans = blobKeysOf(items.filter((i) => !i.stored && !i.uncertain).map((i) => i.sealed));
      if (orphans.length > 0) await dropBlobs(this.env, orphans);
    }
    // A key repeated within the call: the later ones answer what the first one got.
    for (const r of repeats) {
      const first = items.find((i) => i.pool === r.pool && i.input.idempotencyKey === r.input.idempotencyKey && !repeats.includes(i))!;
      out[r.index] = { task: out[first.index]!.task, created: false };
    }
    return out;
  }

  /** Each submission with its pool, defaults and sealed-to-be payload; the whole call refused with every problem. */
  private validate(submissions: readonly Submission[], batch: boolean): Item[] {
    const problems: FieldProblem[] = [];
    const items: Item[] = [];
    for (const [index, task] of submissions.entries()) {
      const prefix = batch ? `tasks.${index}.` : "";
      const pool = poolOfType(task.type, task.pool);
      if (!isPoolName(pool)) {
        problems.push({ field: `${prefix}pool`, message: `the pool taken from type "${task.type}" is not a valid pool name; pass pool explicitly` });
        continue;
      }
      task.dependsOn.forEach((dep, j) => {
        const owner = parseTaskId(dep);
        if (!owner || owner.pool !== pool) problems.push({ field: `${prefix}dependsOn.${j}`, message: `${dep} is not a task of pool ${pool}` });
      });
      const plaintext = JSON.stringify(task.payload ?? {});
      const shared = sharedStateFields(task.payload);
      const input: TaskInput = {
        type: task.type,
        payload: plaintext,
        priority: task.priority,
        requires: { capabilities: [], cpu: 0, memoryMb: 0, gpu: 0, ...task.requires },
        idempotencyKey: task.idempotencyKey ?? null,
        maxAttempts: task.maxAttempts,
        timeoutMs: task.timeoutMs,
        delayMs: task.delayMs,
        dependsOn: task.dependsOn,
        ...(task.fairnessKey !== undefined ? { fairnessKey: task.fairnessKey } : {}),
        ...(task.concurrencyKey !== undefined ? { concurrencyKey: task.concurrencyKey } : {}),
        ...(task.rateLimitKey !== undefined ? { rateLimitKey: task.rateLimitKey } : {}),
        ...(task.debounce !== undefined ? { debounce: task.debounce } : {}),
        ...shared,
        ...(task.fill ? { cache: task.fill } : {}),
        ...(task.workflow ? { workflow: task.workflow } : {}),
      };
      items.push({ index, pool, input, plaintext, shard: 0, reason: "only", pinned: false, claimed: false, stored: false });
    }
    if (problems.length > 0) throw new ApiError("invalid_request", batch ? "some tasks are not valid; none was submitted" : "the task is not valid", problems);
    return items;
  }

  /** Tasks with dependencies go to the shard that holds them now (a drain may have moved them off the one their ids name). */
  private async pinToDependencies(caller: Principal, items: Item[], active: readonly ShardRecord[], batch: boolean): Promise<void> {
    const problems: FieldProblem[] = [];
    await Promise.all(
      items.map(async (item) => {
        if (item.input.dependsOn.length === 0) return;
        const shards = new Set<number>();
        for (const dep of item.input.dependsOn) {
          const named = parseTaskId(dep)!.shard;
          if (active.some((s) => s.id === named)) shards.add(named);
          else {
            const found = await this.calls.forTask(dep, (c) => c.getTask(caller, dep));
            shards.add(found.ok ? found.value.shard : named);
          }
        }
        if (shards.size > 1) {
          problems.push({ field: batch ? `tasks.${item.index}.dependsOn` : "dependsOn", message: `the dependencies are on different shards (${[...shards].join(", ")}); a task and its dependencies share one` });
          return;
        }
        item.shard = [...shards][0]!;
        item.reason = "dependency";
        item.pinned = true;
      }),
    );
    if (problems.length > 0) throw new ApiError("invalid_request", batch ? "some tasks are not valid; none was submitted" : "the task is not valid", problems);
  }

  /** The best active shard for an unpinned task, not one of `full`; counted as sent there. */
  private route(pool: string, item: Item, shards: readonly ShardRecord[], region: Region | null, full: ReadonlySet<number>, retry = false): boolean {
    const open = shards.filter((s) => !full.has(s.id));
    if (open.length === 0) return false;
    const choice = this.calls.randomRoute ? { shard: open[Math.floor(random01() * open.length)]!.id, reason: "rotation" as const } : router.choose(pool, open, region, Date.now(), this.lastShard.get(pool));
    this.lastShard.set(pool, choice.shard);
    item.shard = choice.shard;
    item.reason = retry ? "retry" : choice.reason;
    router.sent(pool, choice.shard);
    return true;
  }

  /**
   * Claims the keys of keyed tasks in the pool's key index. A key first claimed here gives the task its id; a key
   * claimed before answers the task it names (`created: false`), wherever it is. Answers the later repeats of a
   * key within this call, which take the first one's answer.
   */
  private async claimKeys(caller: Principal, pool: string, items: Item[], out: SubmitOutcome[]): Promise<Item[]> {
    const firsts = new Map<string, Item>();
    const repeats: Item[] = [];
    for (const item of items) {
      const key = item.input.idempotencyKey;
      if (key === null) continue;
      if (firsts.has(key)) repeats.push(item);
      else firsts.set(key, item);
    }
    if (firsts.size === 0) return repeats;
    const keyed = [...firsts.values()];
    for (const item of keyed) item.input.id = formatTaskId(pool, item.shard, randomToken(16));
    const index = this.calls.placement.keyIndex(pool);
    const claims = await index.claim(caller.tenant, keyed.map((i) => ({ key: i.input.idempotencyKey!, taskId: i.input.id! })), Date.now());
    await Promise.all(
      keyed.map(async (item, k) => {
        const claim = claims[k]!;
        if (claim.created) {
          item.claimed = true;
          return;
        }
        const existing = await this.existing(caller, claim.taskId, claim.at);
        if (existing) {
          out[item.index] = { task: await openTask(this.env, existing), created: false };
          return;
        }
        // The claimed task is gone (purged after its retention): this submit takes the key over.
        await index.reclaim(caller.tenant, [{ key: item.input.idempotencyKey!, from: claim.taskId, to: item.input.id! }], Date.now());
        item.claimed = true;
      }),
    );
    return repeats;
  }

  /** The task a claim names; null when it is gone. A claim still being submitted is waited for a little. */
  private async existing(caller: Principal, id: string, claimedAt: number): Promise<TaskRecord | null> {
    for (let attempt = 0; ; attempt++) {
      const found = await this.calls.forTask(id, (c) => c.getTask(caller, id));
      if (found.ok) return found.value;
      if (found.error.code !== "not_found") throw ApiError.fromBody(found.error);
      if (Date.now() - claimedAt >= CLAIM_PENDING_MS) return null;
      if (attempt >= 5) throw new ApiError("conflict", "a submit with this idempotency key is still under way; retry shortly", { idempotencyKey: "pending" });
      await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    }
  }

  /**
   * Commits tasks shard by shard (over every pool of the call), re-placing what a draining or full shard refuses,
   * until every task has a home. Over several shards, what a shard would refuse as a whole is checked on each
   * before any commits, so a refusal leaves nothing submitted.
   */
  private async commit(caller: Principal, items: Item[], active: Map<string, readonly ShardRecord[]>, region: Region | null, batch: boolean, out: SubmitOutcome[]): Promise<void> {
    /** Shards of each pool that refused for the quota: full for the rest of this call. */
    const full = new Map<string, Set<number>>();
    let pending = items;
    // Each round either moves tasks off a shard that refused for the quota (at most once per shard) or follows a
    // change of the shard list (draining, keys indexed): bounded by both.
    const rounds = PLACEMENT_ROUNDS + Math.max(0, ...[...active.values()].map((shards) => shards.length));
    for (let round = 0; pending.length > 0; round++) {
      if (round >= rounds) throw new ApiError("conflict", "the pool's shards kept refusing the tasks (draining or full); retry");
      const groups = groupByShard(pending);
      const prechecked: Refusal[] = [];
      if (groups.length > 1) await this.precheck(caller, groups, prechecked);
      if (prechecked.length > 0) {
        // Nothing commits until every part has a shard with room.
        const moved = await this.replace(caller, prechecked, active, full, region, out);
        pending = [...pending.filter((i) => !prechecked.some((r) => r.group.items.includes(i))), ...moved];
        continue;
      }
      const refused: Refusal[] = [];
      await Promise.all(
        groups.map(async (group) => {
          const { pool, shard, items: part } = group;
          // Sealed once: a task re-placed after a refusal takes the same envelope (or R2 object) to the next shard.
          const inputs = await Promise.all(part.map(async (i) => ({ ...i.input, payload: (i.sealed ??= await sealPayload(this.env, caller.tenant, i.plaintext)) })));
          const routed: Partial<Record<RouteReason, number>> = {};
          for (const i of part) routed[i.reason] = (routed[i.reason] ?? 0) + 1;
          // A payload kept in R2 stays out of the coordinator's memory: no plaintext for it.
          const plaintexts = part.map((i) => (isBlobRef(i.sealed) ? "" : i.plaintext));
          const result = await this.calls.on(pool, shard, (c) => c.submit(caller, inputs, plaintexts, routed)).catch((err: unknown) => {
            for (const i of part) i.uncertain = true;
            throw err;
          });
          if (result.room !== undefined) {
            rooms.set(`${shardName(pool, shard)}\n${caller.tenant}`, { room: result.room, at: Date.now() });
            if (rooms.size > 10_000) rooms.delete(rooms.keys().next().value!);
          }
          if (!result.ok) {
            const error = new ApiError(result.error.code, result.error.message, readdress(result.error.details, part.map((i) => i.index), batch));
            if (draining(result) || overQuota(result) || isKeysIndexed(result)) refused.push({ group, why: overQuota(result) ? "quota" : isKeysIndexed(result) ? "keys" : "draining", error });
            else throw error;
            return;
          }
          result.value.forEach((o, k) => o.created && (part[k]!.stored = true));
          const sealed = new Map(inputs.map((t, k) => [t.payload, part[k]!.plaintext]));
          await Promise.all(result.value.map(async (o, k) => (out[part[k]!.index] = { task: await openTask(this.env, o.task, sealed), created: o.created })));
          await this.repointClaims(caller, pool, part, result.value);
        }),
      );
      pending = refused.length === 0 ? [] : await this.replace(caller, refused, active, full, region, out);
    }
  }

  /**
   * The tasks of refused parts on other shards: a draining shard (or one that wants keys claimed first) means this
   * isolate's list is old; a shard out of quota is full for the rest of the call. Throws the refusal when a task
   * cannot move (its dependencies pin it) or no shard is left.
   */
  private async replace(caller: Principal, refused: readonly Refusal[], active: Map<string, readonly ShardRecord[]>, full: Map<string, Set<number>>, region: Region | null, out: SubmitOutcome[]): Promise<Item[]> {
    const pending: Item[] = [];
    for (const { group, why, error } of refused) {
      const { pool } = group;
      if (why !== "quota") {
        const list = await this.calls.placement.list(pool, true);
        active.set(pool, list.shards.filter((s) => s.state === "active"));
        if (why === "keys") {
          pending.push(...(await this.claimAll(caller, pool, group.items, out)));
          continue;
        }
      }
      const closed = full.get(pool) ?? new Set<number>();
      if (why === "quota") full.set(pool, closed.add(group.shard));
      for (const item of group.items) {
        if (item.pinned || !this.route(pool, item, active.get(pool)!, region, closed, true)) throw error;
        if (item.input.idempotencyKey !== null) await this.moveClaim(caller, pool, item);
        pending.push(item);
      }
    }
    return pending;
  }

  /** Tasks a shard refused because their keys were not claimed: claimed now; the ones still to submit. */
  private async claimAll(caller: Principal, pool: string, items: Item[], out: SubmitOutcome[]): Promise<Item[]> {
    const later = await this.claimKeys(caller, pool, items, out);
    if (later.length > 0) throw new ApiError("conflict", "the pool's shards changed while the call repeated an idempotency key; retry", { idempotencyKey: "pending" });
    return items.filter((i) => out[i.index] === undefined);
  }

  /** Before a submit over several shards commits anywhere: every shard's dependencies exist, every quota has room. */
  private async precheck(caller: Principal, groups: readonly Group[], refused: Refusal[]): Promise<void> {
    if (groups.some((g) => g.items.some((i) => i.input.dependsOn.length > 0))) {
      const missing = await Promise.all(
        groups.map(async ({ pool, shard, items }) => {
          const found = unwrap(await this.calls.on(pool, shard, (c) => c.missingDependencies(caller, items.flatMap((i) => i.input.dependsOn))));
          return found.map((id) => ({ field: `tasks (pool ${pool})`, message: `dependsOn names ${id}, which does not exist` }));
        }),
      );
      if (missing.flat().length > 0) throw new ApiError("invalid_request", "some dependencies do not exist; none was submitted", missing.flat());
    }
    await Promise.all(
      groups.map(async (group) => {
        const known = rooms.get(`${shardName(group.pool, group.shard)}\n${caller.tenant}`);
        if (known && Date.now() - known.at < ROOM_FRESH_MS && known.room >= ROOM_MARGIN * group.items.length) return;
        const check = await this.calls.on(group.pool, group.shard, (c) => c.checkQuota(caller, group.items.map((i) => i.input.idempotencyKey)));
        if (check.ok) return;
        if (overQuota(check)) refused.push({ group, why: "quota", error: ApiError.fromBody(check.error) });
        else throw ApiError.fromBody(check.error);
      }),
    );
  }

  /** A keyed task re-placed on another shard: a new id there, and its claim pointed at it. */
  private async moveClaim(caller: Principal, pool: string, item: Item): Promise<void> {
    const from = item.input.id;
    item.input.id = formatTaskId(pool, item.shard, randomToken(16));
    if (from === undefined) {
      const [claim] = await this.calls.placement.keyIndex(pool).claim(caller.tenant, [{ key: item.input.idempotencyKey!, taskId: item.input.id }], Date.now());
      item.claimed = claim!.created;
      if (!claim!.created) throw new ApiError("conflict", "a submit with this idempotency key is under way; retry shortly", { idempotencyKey: "pending" });
    } else {
      await this.calls.placement.keyIndex(pool).reclaim(caller.tenant, [{ key: item.input.idempotencyKey!, from, to: item.input.id }], Date.now());
    }
  }

  /** A shard answered a claimed key with an older task of its own (from before the index): the claim names that one. */
  private async repointClaims(caller: Principal, pool: string, part: readonly Item[], outcomes: readonly SubmitOutcome[]): Promise<void> {
    const changes = part.flatMap((item, k) => (item.claimed && outcomes[k]!.task.id !== item.input.id ? [{ key: item.input.idempotencyKey!, from: item.input.id!, to: outcomes[k]!.task.id }] : []));
    if (changes.length > 0) await this.calls.placement.keyIndex(pool).reclaim(caller.tenant, changes, Date.now());
  }

  private async release(caller: Principal, items: readonly Item[]): Promise<void> {
    const byPool = new Map<string, { key: string; from: string; to: null }[]>();
    for (const i of items) byPool.set(i.pool, [...(byPool.get(i.pool) ?? []), { key: i.input.idempotencyKey!, from: i.input.id!, to: null }]);
    await Promise.allSettled([...byPool].map(([pool, changes]) => this.calls.placement.keyIndex(pool).reclaim(caller.tenant, changes, Date.now())));
  }
}

/** Pins each unpinned task with a debounce, concurrency or rate key (in that order) to its key's shard. */
function pinToKeys(tenant: string, items: Item[], active: readonly ShardRecord[]): void {
  if (active.length === 0) return;
  for (const item of items) {
    if (item.pinned) continue;
    const { debounce, concurrencyKey, rateLimitKey, type } = item.input;
    const key = debounce ? `debounce\n${type}\n${debounce.key}` : concurrencyKey !== undefined ? `concurrency\n${concurrencyKey}` : rateLimitKey !== undefined ? `rate\n${rateLimitKey}` : null;
    if (key === null) continue;
    let best = active[0]!;
    let bestWeight = -1;
    for (const shard of active) {
      const weight = fnv1a32(`${tenant}\n${key}\n${shard.id}`);
      if (weight > bestWeight || (weight === bestWeight && shard.id < best.id)) [best, bestWeight] = [shard, weight];
    }
    item.shard = best.id;
    item.reason = "key";
    item.pinned = true;
  }
}
