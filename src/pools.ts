import type { PoolCoordinator } from "../durable-objects/pool-coordinator";
import { parseTaskId, shardName } from "../durable-objects/pool-coordinator/ids";
import type { MeshDirectory } from "../durable-objects/mesh-directory";
import { ApiError } from "./shared/errors";

/** The coordinator of a pool shard; shard 0 is named after the pool itself. */
export function coordinator(env: Env, pool: string, shard = 0): DurableObjectStub<PoolCoordinator> {
  return env.POOL.getByName(shardName(pool, shard));
}

/** The coordinator that owns a task, from the pool and shard its id names; an id that does not parse is 404. */
export function coordinatorOfTask(env: Env, id: string): DurableObjectStub<PoolCoordinator> {
  const parsed = parseTaskId(id);
  if (!parsed) throw new ApiError("not_found", `no task ${id}`);
  return coordinator(env, parsed.pool, parsed.shard);
}

export function directory(env: Env): DurableObjectStub<MeshDirectory> {
  return env.DIRECTORY.getByName("mesh");
}

/** The pool a task goes to: explicit, or the part of its type before the first dot. */
export function poolOf(type: string, pool: string | undefined): string {
  return pool ?? type.split(".")[0]!;
}
