/**
 * The mesh's secrets, derived from one master key per version: the HS256 key that signs the short-lived
 * tokens of POST /v1/auth/token (lib/security/tokens.ts), and one AES-256-GCM key per tenant that encrypts task
 * payloads and results at rest. Every envelope and every token names the key version it was made with, so the master key can be
 * rotated (bump DAA_KEY_VERSION, keep the old one in DAA_PREVIOUS_MASTER_KEYS) without losing data.
 */
import { base64url } from "jose";

/** The variables a keyring is made from (the Worker's and the coordinators' bindings have them). */
export interface KeyringEnv {
  DAA_MASTER_KEY: string;
  DAA_KEY_VERSION?: string;
  DAA_PREVIOUS_MASTER_KEYS?: string;
}

/** Master secrets by version; `current` encrypts and signs, the others only decrypt and verify. */
export interface Keyring {
  current: number;
  secrets: ReadonlyMap<number, string>;
}

/** The record fields that are encrypted at rest; each is bound into the ciphertext's AAD. */
export type EncryptedField = "payload" | "result" | "cache";

/** Shortest master secret accepted; the API contract promises "16 or more characters". */
export const MIN_MASTER_KEY_LENGTH = 16;

const ENVELOPE_PREFIX = "e1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_SALT = "daa-mesh/v1";
const JWT_INFO = "jwt-hs256";
const PAYLOAD_INFO_PREFIX = "payload-aes256gcm:";
// Caches are per isolate; the bounds only matter for a mesh with very many tenants or test keyrings.
const MAX_KEYRING_CACHE = 16;
const MAX_DERIVED_KEY_CACHE = 4096;

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF that was part of the plaintext instead of silently dropping it.
export const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------------------------
// Keyring from the environment

const keyringCache = new Map<string, Keyring>();
const keyringOfEnv = new WeakMap<object, Keyring>();

/**
 * Builds the keyring from DAA_MASTER_KEY, DAA_KEY_VERSION and DAA_PREVIOUS_MASTER_KEYS
 * (`"<version>=<secret>,..."`). Memoized per combination of those strings, so an isolate parses them once.
 * Throws a plain Error naming the variable when one is invalid (a deployment mistake, not a client's).
 */
export function keyringFromEnv(env: KeyringEnv): Keyring {
  // The bindings object of an isolate stays the same between requests: the keyring parsed from it is kept with it.
  const bound = keyringOfEnv.get(env);
  if (bound !== undefined) return bound;
  const cacheKey = JSON.stringify([env.DAA_MASTER_KEY, env.DAA_KEY_VERSION ?? null, env.DAA_PREVIOUS_MASTER_KEYS ?? null]);
  const cached = keyringCache.get(cacheKey);
  if (cached !== undefined) {
    keyringOfEnv.set(env, cached);
    return cached;
  }

  const keyring = parseKeyring(env);
  if (keyringCache.size >= MAX_KEYRING_CACHE) keyringCache.clear();
  keyringCache.set(cacheKey, keyring);
  keyringOfEnv.set(env, keyring);
  return keyring;
}

function parseKeyring(env: KeyringEnv): Keyring {
  const versionText = (env.DAA_KEY_VERSION ?? "").trim();
  const current = versionText === "" ? 1 : parseVersion(versionText);
  if (current === null) {
    throw new Error(`DAA_KEY_VERSION must be a positive integer (got "${versionText}"); set it in wrangler.toml [vars]`);
  }

  // Secret values never appear in these messages: they end up in logs. Secrets are trimmed, here and in
  // the previous list alike, so that a key moved from one variable to the other derives the same keys.
  const master = typeof env.DAA_MASTER_KEY === "string" ? env.DAA_MASTER_KEY.trim() : "";
  if (master.length < MIN_MASTER_KEY_LENGTH) {
    throw new Error(
      `DAA_MASTER_KEY must be at least ${MIN_MASTER_KEY_LENGTH} characters (got ${master.length}); ` +
        "set it with `wrangler secret put DAA_MASTER_KEY` (locally in .dev.vars)",
    );
  }

  const secrets = new Map<number, string>([[current, master]]);
  const previous = env.DAA_PREVIOUS_MASTER_KEYS ?? "";
  // Empty items are skipped so that a trailing comma or a blank variable is harmless.
  const items = previous.split(",").map((item) => item.trim()).filter((item) => item !== "");
  items.forEach((item, index) => {
    const where = `DAA_PREVIOUS_MASTER_KEYS entry ${index + 1}`;
    // Split at the first "=" only: base64 secrets may end with "=".
    const eq = item.indexOf("=");
    if (eq < 0) throw new Error(`${where} must look like "<version>=<secret>"`);
    const version = parseVersion(item.slice(0, eq).trim());
    const secret = item.slice(eq + 1).trim();
    if (version === null) throw new Error(`${where}: the version before "=" must be a positive integer`);
    if (version >= current) {
      throw new Error(`${where}: version ${version} must be lower than DAA_KEY_VERSION (${current})`);
    }
    if (secrets.has(version)) throw new Error(`${where}: version ${version} appears more than once`);
    if (secret.length < MIN_MASTER_KEY_LENGTH) {
      throw new Error(`${where}: the secret of version ${version} must be at least ${MIN_MASTER_KEY_LENGTH} characters`);
    }
    secrets.set(version, secret);
  });

  return { current, secrets };
}

export function parseVersion(text: string): number | null {
  if (!/^[0-9]{1,9}$/.test(text)) return null;
  const version = Number(text);
  return version >= 1 ? version : null;
}

// ---------------------------------------------------------------------------------------------------------
// Key derivation

// Holds promises so that concurrent first requests share one derivation. Keyed by the secret as well as
// the version: two keyrings may give the same version different secrets (tests, a mistaken rotation).
const derivedKeys = new Map<string, Promise<CryptoKey>>();

function secretOf(keyring: Keyring, version: number): string {
  const secret = keyring.secrets.get(version);
  if (secret === undefined) {
    throw new Error(
      `master key version ${version} is not in the keyring; add "${version}=<its secret>" to ` +
        "DAA_PREVIOUS_MASTER_KEYS (or restore DAA_KEY_VERSION/DAA_MASTER_KEY)",
    );
  }
  return secret;
}

function derive(
  keyring: Keyring,
  version: number,
  info: string,
  algorithm: SubtleCryptoImportKeyAlgorithm,
  usages: string[],
): Promise<CryptoKey> {
  const secret = secretOf(keyring, version);
  const cacheKey = `${version}\u0000${info}\u0000${secret}`;
  const cached = derivedKeys.get(cacheKey);
  if (cached !== undefined) return cached;

  const promise = (async () => {
    const base = await crypto.subtle.importKey("raw", encoder.encode(secret), "HKDF", false, ["deriveKey"]);
    return crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: encoder.encode(HKDF_SALT), info: encoder.encode(info) },
      base,
      algorithm,
      false,
      usages,
    );
  })();
  if (derivedKeys.size >= MAX_DERIVED_KEY_CACHE) {
    // Map iteration follows insertion order: drop the oldest entry.
    const oldest = derivedKeys.keys().next();
    if (oldest.done !== true) derivedKeys.delete(oldest.value);
  }
  derivedKeys.set(cacheKey, promise);
  // A failed derivation must not stay cached, or the isolate would fail forever.
  promise.catch(() => derivedKeys.delete(cacheKey));
  return promise;
}

/** The HS256 key tokens are signed with under a key version. */
export function signingKey(keyring: Keyring, version: number): Promise<CryptoKey> {
  return derive(keyring, version, JWT_INFO, { name: "HMAC", hash: "SHA-256", length: 256 }, ["sign", "verify"]);
}

/** Data keys by keyring, then version and tenant: the lookup on every seal and open, without hashing the secret. */
const dataKeysOfRing = new WeakMap<Keyring, Map<string, Promise<CryptoKey>>>();

function dataKey(keyring: Keyring, version: number, tenant: string): Promise<CryptoKey> {
  let keys = dataKeysOfRing.get(keyring);
  if (keys === undefined) dataKeysOfRing.set(keyring, (keys = new Map()));
  const name = `${version}\u0000${tenant}`;
  let key = keys.get(name);
  if (key === undefined) {
    key = derive(keyring, version, PAYLOAD_INFO_PREFIX + tenant, { name: "AES-GCM", length: 256 }, ["encrypt", "decrypt"]);
    if (keys.size >= MAX_DERIVED_KEY_CACHE) keys.clear();
    keys.set(name, key);
    const held = keys;
    key.catch(() => held.delete(name));
  }
  return key;
}

// ---------------------------------------------------------------------------------------------------------
// Encryption at rest

const additionalDataCache = new Map<string, Uint8Array>();

function additionalData(tenant: string, field: EncryptedField): Uint8Array {
  // Binding tenant and field means a ciphertext copied to another tenant's row, or from payload to
  // result, fails authentication instead of decrypting. WebCrypto copies its inputs, so one array serves every call.
  const text = `${tenant}\n${field}`;
  let bytes = additionalDataCache.get(text);
  if (bytes === undefined) {
    bytes = encoder.encode(text);
    if (additionalDataCache.size >= 1_024) additionalDataCache.clear();
    additionalDataCache.set(text, bytes);
  }
  return bytes;
}

/**
 * Encrypts one field of a tenant's record with the current key version (AES-256-GCM, random 96-bit IV).
 * Returns `e1.<keyVersion>.<base64url(iv || ciphertext || tag)>`.
 */
export async function encryptField(keyring: Keyring, tenant: string, field: EncryptedField, plaintext: string): Promise<string> {
  const version = keyring.current;
  const key = await dataKey(keyring, version, tenant);
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: additionalData(tenant, field), tagLength: TAG_BYTES * 8 },
      key,
      encoder.encode(plaintext),
    ),
  );
  const packed = new Uint8Array(IV_BYTES + sealed.length);
  packed.set(iv, 0);
  packed.set(sealed, IV_BYTES);
  return `${ENVELOPE_PREFIX}.${version}.${base64url.encode(packed)}`;
}

/**
 * Decrypts an envelope from {@link encryptField} with the key version it names (current or previous).
 * Throws on a malformed envelope, a version missing from the keyring, or failed authentication.
 */
export async function decryptField(keyring: Keyring, tenant: string, field: EncryptedField, envelope: string): Promise<string> {
  const parts = envelope.split(".");
  const [prefix, versionText, body] = parts;
  if (parts.length !== 3 || prefix !== ENVELOPE_PREFIX || versionText === undefined || body === undefined) {
    throw new Error(`malformed encrypted ${field}: expected "${ENVELOPE_PREFIX}.<version>.<data>"`);
  }
  const version = parseVersion(versionText);
  if (version === null) throw new Error(`malformed encrypted ${field}: bad key version`);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new Error(`malformed encrypted ${field}: data is not base64url`);
  let packed: Uint8Array;
  try {
    packed = base64url.decode(body);
  } catch {
    throw new Error(`malformed encrypted ${field}: data is not base64url`);
  }
  if (packed.length < IV_BYTES + TAG_BYTES) throw new Error(`malformed encrypted ${field}: data too short`);

  // Throws the "add it to DAA_PREVIOUS_MASTER_KEYS" message for an unknown version.
  const key = await dataKey(keyring, version, tenant);
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: packed.subarray(0, IV_BYTES),
        additionalData: additionalData(tenant, field),
        tagLength: TAG_BYTES * 8,
      },
      key,
      packed.subarray(IV_BYTES),
    );
  } catch {
    throw new Error(
      `encrypted ${field} failed authentication (key version ${version}): it was altered, belongs to ` +
        "another tenant or field, or the master key for that version is wrong",
    );
  }
  return strictDecoder.decode(plain);
}
