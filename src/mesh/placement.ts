/**
 * Placement: which shards a pool has and where a task goes. Every pool has shard 0; until the edge-mesh issue
 * (sharding and latency routing) that is the only shard, so every new task goes there, and a task's id names the
 * shard that owns it.
 */
import { ApiError } from "../../contract/errors.ts";
import { parseTaskId, shardName, type TaskHome } from "../../contract/ids.ts";
import type { TaskInput } from "../../contract/records.ts";

/** The coordinator stub of one pool shard (typed by the Worker's generated Env). */
export type Coordinator = ReturnType<Env["POOL"]["getByName"]>;

export class Placement {
  private readonly env: Env;

  constructor(env: Env) {
    this.env = env;
  }

  coordinator(pool: string, shard = 0): Coordinator {
    return this.env.POOL.getByName(shardName(pool, shard));
  }

  /** The shard that holds a pool's agents and pool-wide state. */
  home(pool: string): Coordinator {
    return this.coordinator(pool, 0);
  }

  /** The shards of a pool that answer for its tasks. */
  async shards(_pool: string): Promise<number[]> {
    return [0];
  }

  /** Where a new task goes. */
  async shardFor(_pool: string, _input: TaskInput): Promise<number> {
    return 0;
  }

  /** The shard that owns a task, from its id; an id that does not parse names no task (404). */
  ownerOf(id: string): TaskHome {
    const home = parseTaskId(id);
    if (!home) throw new ApiError("not_found", `no task ${id}`);
    return home;
  }

  directory(): ReturnType<Env["DIRECTORY"]["getByName"]> {
    return this.env.DIRECTORY.getByName("mesh");
  }
}
