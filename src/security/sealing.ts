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

/** The task with its payload and result as plaintext JSON text. */
export async function openTask<T extends TaskRecord | LeasedTask>(env: Env & OptionalSecrets, task: T): Promise<T> {
  const keyring = keyringFromEnv(env);
  const [payload, result] = await Promise.all([
    decryptField(keyring, task.tenant, "payload", task.payload),
    task.result === null ? Promise.resolve(null) : decryptField(keyring, task.tenant, "result", task.result),
  ]);
  return { ...task, payload, result };
}

export function openTasks<T extends TaskRecord | LeasedTask>(env: Env & OptionalSecrets, tasks: readonly T[]): Promise<T[]> {
  return Promise.all(tasks.map((t) => openTask(env, t)));
}
