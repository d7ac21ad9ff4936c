/**
 * Payloads and results at rest are AES-256-GCM envelopes under the task tenant's key. The Worker seals payloads
 * (it knows the submitting tenant) and opens both for authorised callers; the coordinator seals results, since
 * only it knows the tenant of the task an agent completes.
 */
import type { LeasedTask, TaskRecord } from "../../contract/records.ts";
import { decryptField, encryptField, keyringFromEnv, type KeyringEnv } from "./keyring.ts";

export async function sealPayload(env: KeyringEnv, tenant: string, json: string): Promise<string> {
  return encryptField(keyringFromEnv(env), tenant, "payload", json);
}

export async function sealResult(env: KeyringEnv, tenant: string, json: string): Promise<string> {
  return encryptField(keyringFromEnv(env), tenant, "result", json);
}

/** Plaintexts of envelopes sealed a moment ago, by envelope. */
export interface KnownPlaintexts {
  get(envelope: string): string | undefined;
}

/**
 * The task with its payload and result as plaintext JSON text. `sealed` maps envelopes this request sealed to
 * their plaintext: a task just created answers with what was sent without decrypting it again (an envelope has a
 * random IV, so it names one sealing).
 */
export async function openTask<T extends TaskRecord | LeasedTask>(env: KeyringEnv, task: T, sealed?: KnownPlaintexts): Promise<T> {
  const keyring = keyringFromEnv(env);
  const known = sealed?.get(task.payload);
  const [payload, result] = await Promise.all([
    known ?? decryptField(keyring, task.tenant, "payload", task.payload),
    task.result === null ? Promise.resolve(null) : decryptField(keyring, task.tenant, "result", task.result),
  ]);
  return { ...task, payload, result };
}

export function openTasks<T extends TaskRecord | LeasedTask>(env: KeyringEnv, tasks: readonly T[], sealed?: KnownPlaintexts): Promise<T[]> {
  return Promise.all(tasks.map((t) => openTask(env, t, sealed)));
}
