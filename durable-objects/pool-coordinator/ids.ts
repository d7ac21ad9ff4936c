/**
 * Task ids and lease tokens. A task id names its pool and shard, so any Worker can route it without a
 * lookup: `<pool>.<shard>.<22 random base64url characters>`.
 */
const POOL_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const TASK_ID_PATTERN = /^([a-z0-9][a-z0-9_-]{0,62})\.(0|[1-9][0-9]{0,3})\.([A-Za-z0-9_-]{22})$/;

export function isPoolName(name: string): boolean {
  return POOL_PATTERN.test(name);
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Bytes as unpadded base64url (RFC 4648 section 5), without going through a binary string and btoa. */
export function base64url(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += BASE64URL[(n >> 18) & 63]! + BASE64URL[(n >> 12) & 63]! + BASE64URL[(n >> 6) & 63]! + BASE64URL[n & 63]!;
  }
  if (bytes.length - i === 1) {
    const n = bytes[i]! << 16;
    out += BASE64URL[(n >> 18) & 63]! + BASE64URL[(n >> 12) & 63]!;
  } else if (bytes.length - i === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += BASE64URL[(n >> 18) & 63]! + BASE64URL[(n >> 12) & 63]! + BASE64URL[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * Random bytes from the platform's CSPRNG, drawn a page at a time: one getRandomValues call serves a lease of
 * hundreds of tokens. Filled on first use (Workers refuse randomness at module scope), each byte handed out once.
 */
let randomPool = new Uint8Array(0);
let randomAt = 0;

function randomBytes(n: number): Uint8Array {
  if (randomAt + n > randomPool.length) {
    randomPool = crypto.getRandomValues(new Uint8Array(Math.max(4096, n)));
    randomAt = 0;
  }
  const out = randomPool.subarray(randomAt, randomAt + n);
  randomAt += n;
  return out;
}

export function randomToken(bytes = 16): string {
  return base64url(randomBytes(bytes));
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
