/**
 * Names and identifiers of the mesh (../shared/API.md, "Identifiers"): pools, tenants, agents, shards and task ids.
 * A task id names its pool and shard, `<pool>.<shard>.<22 random base64url characters>`, so any Worker can route
 * it without a lookup; the random part comes from lib/random.ts.
 */
export const POOL_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const TENANT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
export const TASK_ID = /^([a-z0-9][a-z0-9_-]{0,62})\.(0|[1-9][0-9]{0,3})\.([A-Za-z0-9_-]{22})$/;

/** Shards of a pool are numbered from 0 (every pool starts with shard 0); ids are never reused. */
export const MAX_SHARD = 9_999;

export function isPoolName(name: string): boolean {
  return POOL_NAME.test(name);
}

export function isTenantName(name: string): boolean {
  return TENANT_NAME.test(name);
}

/** Where a task lives: its pool and the shard that owns it. */
export interface TaskHome {
  pool: string;
  shard: number;
}

/** A task id from its pool, shard and random part (22 base64url characters). */
export function formatTaskId(pool: string, shard: number, random: string): string {
  return `${pool}.${shard}.${random}`;
}

/** The pool and shard a task id names, or null when it does not parse (the API then answers 404). */
export function parseTaskId(id: string): TaskHome | null {
  const m = TASK_ID.exec(id);
  return m ? { pool: m[1]!, shard: Number(m[2]) } : null;
}

/** The Durable Object name of a pool shard: the pool itself for shard 0, `<pool>#<shard>` otherwise. */
export function shardName(pool: string, shard: number): string {
  return shard === 0 ? pool : `${pool}#${shard}`;
}

export function parseShardName(name: string): TaskHome {
  const [pool = name, shard = "0"] = name.split("#");
  return { pool, shard: Number(shard) };
}

/** The pool a task goes to: explicit, or the part of its type before the first dot. */
export function poolOfType(type: string, pool?: string): string {
  return pool ?? type.split(".")[0]!;
}
