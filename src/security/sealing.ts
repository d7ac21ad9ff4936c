import type { LeasedTask, TaskRecord } from "../../durable-objects/pool-coordinator/types";
import type { OptionalSecrets } from "../env";
import { decryptField, encryptField, keyringFromEnv } from "./keyring";

/**
 * Payloads and results at rest are AES-256-GCM envelopes under the task tenant's key. The Worker seals payloads
 * (it knows the submitting tenant) and opens both for authorised callers; the coordinator seals results, since
 * only it knows the tenant of the task an agent completes.
 */
export async function sealPayload(env: Env & OptionalSecrets, tenant: string, json: string): Promise<string> {
  return encryptField(keyringFromEnv(env), tenant, "payload", json);
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
export async function openTask<T extends TaskRecord | LeasedTask>(env: Env & OptionalSecrets, task: T, sealed?: KnownPlaintexts): Promise<T> {
  const keyring = keyringFromEnv(env);
  const known = sealed?.get(task.payload);
  const [payload, result] = await Promise.all([
    known ?? decryptField(keyring, task.tenant, "payload", task.payload),
    task.result === null ? Promise.resolve(null) : decryptField(keyring, task.tenant, "result", task.result),
  ]);
  return { ...task, payload, result };
}

export function openTasks<T extends TaskRecord | LeasedTask>(env: Env & OptionalSecrets, tasks: readonly T[], sealed?: KnownPlaintexts): Promise<T[]> {
  return Promise.all(tasks.map((t) => openTask(env, t, sealed)));
}
