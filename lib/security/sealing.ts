/**
 * Payloads and results at rest are AES-256-GCM envelopes under the task tenant's key. The Worker seals payloads
 * (it knows the submitting tenant) and opens both for authorised callers; the coordinator seals results, since
 * only it knows the tenant of the task an agent completes. A field over 128 KiB of JSON is kept in R2 and the row
 * holds a reference to it (blob-refs.ts, docs/payloads.md); opening reads it back. Rows written before that hold
 * their envelope inline, and open as they always did.
 */
import type { LeasedTask, TaskRecord } from "../../contract/records.ts";
import { formatBlobRef, isBlobRef, isLarge, newBlobKey, openedBytes, parseBlobRef, utf8Bytes } from "./blob-refs.ts";
import { decryptField, encryptField, keyringFromEnv, type EncryptedField, type KeyringEnv } from "./keyring.ts";

/** What sealing needs of an R2 bucket (the BLOBS binding). */
export interface BlobStore {
  put(key: string, value: string): Promise<unknown>;
  get(key: string): Promise<{ text(): Promise<string> } | null>;
  delete(keys: string | string[]): Promise<void>;
}

export interface SealingEnv extends KeyringEnv {
  BLOBS: BlobStore;
}

/** Keys one R2 delete call takes at most. */
const DELETE_CHUNK = 1_000;

async function seal(env: SealingEnv, tenant: string, field: "payload" | "result", json: string): Promise<string> {
  const envelope = await encryptField(keyringFromEnv(env), tenant, field, json);
  if (!isLarge(json)) return envelope;
  const key = newBlobKey(field, tenant);
  await env.BLOBS.put(key, envelope);
  return formatBlobRef({ key, bytes: utf8Bytes(json) });
}

/** The payload as the row stores it: an envelope, or a reference to one in R2 (written here) when it is large. */
export function sealPayload(env: SealingEnv, tenant: string, json: string): Promise<string> {
  return seal(env, tenant, "payload", json);
}

export function sealResult(env: SealingEnv, tenant: string, json: string): Promise<string> {
  return seal(env, tenant, "result", json);
}

/** The plaintext JSON of a stored field. A reference whose object is gone throws (it is deleted only with its task). */
export async function openField(env: SealingEnv, tenant: string, field: EncryptedField, stored: string): Promise<string> {
  const keyring = keyringFromEnv(env);
  if (!isBlobRef(stored)) return decryptField(keyring, tenant, field, stored);
  const { key } = parseBlobRef(stored)!;
  const object = await env.BLOBS.get(key);
  if (object === null) throw new Error(`the ${field} of this task is missing from R2 (${key})`);
  return decryptField(keyring, tenant, field, await object.text());
}

/**
 * Deletes these R2 objects, best effort: answers the keys it could not delete, for the caller to try again or to
 * leave. Deleting a key that is already gone is no error.
 */
export async function dropBlobs(env: SealingEnv, keys: readonly string[]): Promise<string[]> {
  const failed: string[] = [];
  for (let i = 0; i < keys.length; i += DELETE_CHUNK) {
    const chunk = keys.slice(i, i + DELETE_CHUNK);
    try {
      await env.BLOBS.delete(chunk);
    } catch (err) {
      console.warn(`could not delete ${chunk.length} blob(s) from R2`, err);
      failed.push(...chunk);
    }
  }
  return failed;
}

/** Plaintexts of envelopes sealed a moment ago, by envelope. */
export interface KnownPlaintexts {
  get(envelope: string): string | undefined;
}

/** Fields of a task left out of an answer (the task then says so: `payloadOmitted`, `resultOmitted`). */
export interface LeftOut {
  payload?: boolean;
  result?: boolean;
}

/**
 * The task with its payload and result as plaintext JSON text. `sealed` maps envelopes this request sealed to
 * their plaintext: a task just created answers with what was sent without decrypting it again (an envelope has a
 * random IV, so it names one sealing). A field in `omit` is not read: it opens as `null`, and the task is marked.
 */
export async function openTask<T extends TaskRecord | LeasedTask>(env: SealingEnv, task: T, sealed?: KnownPlaintexts, omit: LeftOut = {}): Promise<T> {
  const known = sealed?.get(task.payload);
  const [payload, result] = await Promise.all([
    omit.payload ? "null" : (known ?? openField(env, task.tenant, "payload", task.payload)),
    task.result === null ? null : omit.result ? "null" : openField(env, task.tenant, "result", task.result),
  ]);
  const marks = { ...(omit.payload ? { payloadOmitted: true } : {}), ...(omit.result && task.result !== null ? { resultOmitted: true } : {}) };
  return { ...task, payload, result, ...marks };
}

/**
 * Opens tasks for one answer. With `budgetBytes`, fields kept in R2 are opened while the answer's plaintext stays
 * within the budget, and left out (marked) beyond it; the first of them is always opened, so an answer always
 * carries something. Inline fields are always opened: they came with the row.
 */
export function openTasks<T extends TaskRecord | LeasedTask>(env: SealingEnv, tasks: readonly T[], sealed?: KnownPlaintexts, budgetBytes = Infinity): Promise<T[]> {
  let used = 0;
  let opened = 0;
  const fits = (stored: string | null): boolean => {
    if (stored === null || !isBlobRef(stored)) return true;
    const bytes = openedBytes(stored);
    if (opened > 0 && used + bytes > budgetBytes) return false;
    used += bytes;
    opened++;
    return true;
  };
  const plans = tasks.map((t) => {
    used += isBlobRef(t.payload) ? 0 : openedBytes(t.payload);
    if (t.result !== null && !isBlobRef(t.result)) used += openedBytes(t.result);
    return { payload: !fits(t.payload), result: !fits(t.result) };
  });
  return Promise.all(tasks.map((t, i) => openTask(env, t, sealed, plans[i])));
}
