/**
 * Randomness for ids and tokens, from the platform's CSPRNG, and the base64url text they are written in.
 */
import { formatTaskId } from "../contract/ids.ts";

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

/** `bytes` random bytes as base64url (16 bytes: 22 characters). */
export function randomToken(bytes = 16): string {
  return base64url(randomBytes(bytes));
}

export function newTaskId(pool: string, shard: number): string {
  return formatTaskId(pool, shard, randomToken(16));
}

/** A uniformly random number in [0, 1) from the platform's CSPRNG (for backoff jitter). */
export function random01(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]! / 2 ** 32;
}
