/**
 * Output cache keys (API.md, "Caches and vector indexes"): the SHA-256 of the tenant, the type, the `cacheVersion`
 * and the payload in canonical JSON (RFC 8785, by the `canonicalize` library: key order and number spelling do not
 * matter), behind the tenant's name (contract/cache.ts).
 */
import canonicalize from "canonicalize";
import { sha256Hex } from "../../../lib/hash.ts";

export async function cacheKeyOf(tenant: string, type: string, version: string, payload: unknown): Promise<string> {
  const canonical = canonicalize(payload ?? {}) ?? "null";
  return `${tenant}.${await sha256Hex(`${JSON.stringify([tenant, type, version])}\n${canonical}`)}`;
}
