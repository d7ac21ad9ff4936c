/**
 * Task ids and lease tokens. A task id names its pool and shard, so any Worker can route it without a
 * lookup: `<pool>.<shard>.<22 random base64url characters>`.
 */
const POOL_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const TASK_ID_PATTERN = /^([a-z0-9][a-z0-9_-]{0,62})\.(0|[1-9][0-9]{0,3})\.([A-Za-z0-9_-]{22})$/;

export function isPoolName(name: string): boolean {
  return POOL_PATTERN.test(name);
}

export function randomToken(bytes = 16): string {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  let bin = "";
  for (const b of buf) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function newTaskId(pool: string, shard: number): string {
  return `${pool}.${shard}.${randomToken(16)}`;
}

/** The Durable Object name of a pool shard: the pool itself for shard 0, `<pool>#<shard>` otherwise. */
export function shardName(pool: string, shard: number): string {
  return shard === 0 ? pool : `${pool}#${shard}`;
}

export function parseShardName(name: string): { pool: string; shard: number } {
  const [pool = name, shard = "0"] = name.split("#");
  return { pool, shard: Number(shard) };
}

/** The pool and shard a task id names, or null when it does not parse (the API then answers 404). */
export function parseTaskId(id: string): { pool: string; shard: number } | null {
  const m = TASK_ID_PATTERN.exec(id);
  return m ? { pool: m[1]!, shard: Number(m[2]) } : null;
}

/** A uniformly random number in [0, 1) from the platform's CSPRNG (for backoff jitter). */
export function random01(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]! / 2 ** 32;
}
