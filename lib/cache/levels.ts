/**
 * The output cache's shared levels (API.md, "Caches and vector indexes"): L2 Workers KV, L3 R2 with the Cache API
 * of the data center in front. Every level holds the same value: the entry (contract/cache.ts) as JSON, sealed
 * with its tenant's key (AES-256-GCM, field "cache"), so KV, R2 and the Cache API store only ciphertext.
 *
 * Purges must reach every level. R2 is strongly consistent: a purge deletes the object there. KV deletes take time
 * to spread (up to a minute on Cloudflare) and the Cache API is per data center, so both are addressed under the
 * tenant's cache **generation** (the CacheIndex object bumps it at each purge): after a purge they are looked up
 * under new keys and refill from R2; the old values expire by their TTL.
 */
import type { CacheEntry } from "../../contract/cache.ts";
import { r2KeyOf } from "../../contract/cache.ts";
import { decryptField, encryptField, keyringFromEnv, type KeyringEnv } from "../security/keyring.ts";

export interface CacheLevelsEnv extends KeyringEnv {
  CACHE_KV: KVNamespace;
  CACHE_R2: R2Bucket;
}

/** The Cache API's key space for entries (never fetched: the Cache API only needs a URL as key). */
const CACHE_API_ORIGIN = "https://cache.daa-mesh.internal";
/** Workers KV refuses a TTL under 60 s. */
export const KV_MIN_TTL_S = 60;

export function sealEntry(env: KeyringEnv, entry: CacheEntry): Promise<string> {
  return encryptField(keyringFromEnv(env), entry.tenant, "cache", JSON.stringify(entry));
}

/** Opens a sealed entry of `tenant`; another tenant's value fails authentication (an error, never its content). */
export async function openEntry(env: KeyringEnv, tenant: string, sealed: string): Promise<CacheEntry> {
  const entry = JSON.parse(await decryptField(keyringFromEnv(env), tenant, "cache", sealed)) as CacheEntry;
  if (entry.tenant !== tenant) throw new Error(`cache entry ${entry.key} is not tenant ${tenant}'s`);
  return entry;
}

function kvKeyOf(key: string, generation: number): string {
  return `${key}@${generation}`;
}

function cacheApiRequest(key: string, generation: number): Request {
  return new Request(`${CACHE_API_ORIGIN}/${generation}/${key}`);
}

/** The data center's cache (absent outside workerd, e.g. in Node scripts). */
function dataCenterCache(): Cache | null {
  return typeof caches === "undefined" ? null : caches.default;
}

export async function readL2(env: CacheLevelsEnv, key: string, generation: number): Promise<string | null> {
  return env.CACHE_KV.get(kvKeyOf(key, generation), "text");
}

export async function writeL2(env: CacheLevelsEnv, key: string, generation: number, sealed: string, ttlMs: number, expiresAt: number, now: number): Promise<void> {
  // Never past the entry's own end (the L3 expiry), and never under KV's minimum.
  const ttlS = Math.max(KV_MIN_TTL_S, Math.floor(Math.min(ttlMs, expiresAt - now) / 1000));
  if (expiresAt - now < KV_MIN_TTL_S * 1000) return;
  await env.CACHE_KV.put(kvKeyOf(key, generation), sealed, { expirationTtl: ttlS });
}

/** L3 through the data center's Cache API: a sealed entry, or null. */
export async function readL3Edge(key: string, generation: number): Promise<string | null> {
  const cache = dataCenterCache();
  if (!cache) return null;
  const hit = await cache.match(cacheApiRequest(key, generation));
  return hit ? hit.text() : null;
}

/** L3 in R2 (the global store): a sealed entry still within its lifetime, or null. */
export async function readL3(env: CacheLevelsEnv, key: string, now: number): Promise<string | null> {
  const object = await env.CACHE_R2.get(r2KeyOf(key));
  if (!object) return null;
  const expiresAt = Number(object.customMetadata?.expiresAt ?? 0);
  if (expiresAt <= now) return null;
  return object.text();
}

/** Puts the entry in front of R2 in this data center's cache until it expires. */
export async function writeL3Edge(key: string, generation: number, sealed: string, expiresAt: number, now: number): Promise<void> {
  const cache = dataCenterCache();
  const maxAge = Math.floor((expiresAt - now) / 1000);
  if (!cache || maxAge <= 0) return;
  const response = new Response(sealed, { headers: { "content-type": "text/plain", "cache-control": `max-age=${maxAge}` } });
  await cache.put(cacheApiRequest(key, generation), response);
}

export async function writeL3(env: CacheLevelsEnv, entry: CacheEntry, sealed: string): Promise<void> {
  await env.CACHE_R2.put(r2KeyOf(entry.key), sealed, {
    customMetadata: { tenant: entry.tenant, type: entry.type, expiresAt: String(entry.expiresAt) },
  });
}

/** Deletes entries from R2 (in chunks of R2's limit of 1000 keys a call). */
export async function deleteL3(env: CacheLevelsEnv, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) await env.CACHE_R2.delete(keys.slice(i, i + 1000).map(r2KeyOf));
}

/** Best effort: the KV values of entries under a generation that a purge left behind (they expire anyway). */
export async function deleteL2(env: CacheLevelsEnv, keys: readonly string[], generation: number): Promise<void> {
  await Promise.all(keys.map((k) => env.CACHE_KV.delete(kvKeyOf(k, generation)).catch(() => undefined)));
  const cache = dataCenterCache();
  if (cache) await Promise.all(keys.map((k) => cache.delete(cacheApiRequest(k, generation)).catch(() => false)));
}
