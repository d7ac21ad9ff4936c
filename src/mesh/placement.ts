/**
 * Placement: which shards a pool has and where a call goes. The directory holds each pool's shard list
 * (versioned); this isolate keeps it for at most `LIST_TTL_MS`, and sooner forgets it when a shard says the list
 * moved on (a draining shard refusing a task, a newer version in an answer). A task's id names the shard that
 * created it; one that moved in a drain is found through the forwarding record there.
 */
import { ApiError } from "../../contract/errors.ts";
import { parseTaskId, shardName, type TaskHome } from "../../contract/ids.ts";
import type { PoolRpc } from "../../contract/pool-rpc.ts";
import type { ShardList, ShardRecord } from "../../contract/records.ts";
import type { ShardRpc } from "../../contract/shard-rpc.ts";

/** How stale this isolate's copy of a pool's shard list may be. */
export const LIST_TTL_MS = 2_000;

/**
 * A pool shard's coordinator as the gateway calls it: the operations of contract/pool-rpc.ts and shard-rpc.ts,
 * and `fetch` for agent sockets (the stub's own RPC types are too wide to infer outcomes through).
 */
export type Coordinator = PoolRpc & ShardRpc & { fetch(request: Request): Promise<Response> };

const lists = new Map<string, { list: ShardList; at: number }>();
/** The home shard of each agent this isolate has seen, by `<pool>\n<agent id>`. */
const homes = new Map<string, number>();

export class Placement {
  private readonly env: Env;

  constructor(env: Env) {
    this.env = env;
  }

  coordinator(pool: string, shard = 0): Coordinator {
    const region = lists.get(pool)?.list.shards.find((s) => s.id === shard)?.region ?? null;
    const stub = region === null ? this.env.POOL.getByName(shardName(pool, shard)) : this.env.POOL.getByName(shardName(pool, shard), { locationHint: region });
    return stub as unknown as Coordinator;
  }

  /** The pool's shard list, from this isolate's copy while it is fresh. */
  async list(pool: string, fresh = false): Promise<ShardList> {
    const held = lists.get(pool);
    if (!fresh && held && Date.now() - held.at < LIST_TTL_MS) return held.list;
    const list = await this.directory().shards(pool);
    this.remember(list);
    return list;
  }

  remember(list: ShardList): void {
    const held = lists.get(list.pool);
    if (!held || held.list.version <= list.version) lists.set(list.pool, { list, at: Date.now() });
    if (lists.size > 10_000) lists.delete(lists.keys().next().value!);
  }

  /** The shards that take new tasks. */
  async active(pool: string, fresh = false): Promise<ShardRecord[]> {
    return (await this.list(pool, fresh)).shards.filter((s) => s.state === "active");
  }

  /** The shards that still answer for tasks and agents (active and draining). */
  async serving(pool: string): Promise<ShardRecord[]> {
    return (await this.list(pool)).shards.filter((s) => s.state !== "retired");
  }

  /** The shard that created a task, from its id; an id that does not parse names no task (404). */
  ownerOf(id: string): TaskHome {
    const home = parseTaskId(id);
    if (!home) throw new ApiError("not_found", `no task ${id}`);
    return home;
  }

  homeOf(pool: string, agentId: string): number | undefined {
    return homes.get(`${pool}\n${agentId}`);
  }

  rememberHome(pool: string, agentId: string, shard: number): void {
    homes.set(`${pool}\n${agentId}`, shard);
    if (homes.size > 100_000) homes.delete(homes.keys().next().value!);
  }

  directory(): ReturnType<Env["DIRECTORY"]["getByName"]> {
    return this.env.DIRECTORY.getByName("mesh");
  }

  keyIndex(pool: string): ReturnType<Env["KEY_INDEX"]["getByName"]> {
    return this.env.KEY_INDEX.getByName(pool);
  }
}
