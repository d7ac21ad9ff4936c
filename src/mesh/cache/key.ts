/**
 * Output cache keys (API.md, "Caches and vector indexes"): the SHA-256 of the tenant, the type, the `cacheVersion`
 * and the payload in canonical JSON (RFC 8785, by the `canonicalize` library: key order and number spelling do not
 * matter), behind the tenant's name (contract/cache.ts).
 */
import canonicalize from "canonicalize";
import { sha256Hex } from "../../../lib/hash.ts";

/**
 * The key, or null for a payload RFC 8785 cannot put in canonical form (a number JSON parsed as Infinity, a lone
 * surrogate): such a task is not cacheable and runs as usual.
 */
export async function cacheKeyOf(tenant: string, type: string, version: string, payload: unknown): Promise<string | null> {
  let canonical: string;
  try {
    canonical = canonicalize(payload ?? {}) ?? "null";
  } catch {
    return null;
  }
  return `${tenant}.${await sha256Hex(`${JSON.stringify([tenant, type, version])}\n${canonical}`)}`;
}
