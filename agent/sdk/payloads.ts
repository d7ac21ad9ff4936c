// Payloads the mesh left out of a leased task (`payloadOmitted`: too large for a WebSocket frame, or past a lease
// answer's size budget; docs/payloads.md), fetched over HTTP under the task's lease token before its handler runs.
// Nothing here can keep a task forever: a lease that is gone ends the run, and a payload that cannot be read after a
// few tries fails the attempt as retryable, which the mesh counts against the task's maxAttempts.
import { Backoff } from "./backoff.ts";
import { MeshError, type MeshClient } from "./api.ts";
import { sleep } from "./timers.ts";
import type { LeasedTask } from "./wire.ts";

export type PayloadOutcome =
  | { ok: true; payload: unknown }
  /** `lost`: the lease is no longer this agent's (expired, cancelled, moved on): nothing to run or report. */
  | { ok: false; lost: boolean; message: string };

/** Tries of one fetch before the attempt fails. */
export const PAYLOAD_FETCH_TRIES = 4;

export async function payloadOf(client: Pick<MeshClient, "leasedPayload">, task: LeasedTask, signal: AbortSignal, backoff = new Backoff({ baseMs: 200, maxMs: 2_000 })): Promise<PayloadOutcome> {
  if (task.payloadOmitted !== true) return { ok: true, payload: task.payload };
  for (let tries = 1; ; tries++) {
    try {
      return { ok: true, payload: await client.leasedPayload(task.id, task.leaseToken, signal) };
    } catch (err) {
      const message = `could not fetch the payload of task ${task.id}: ${err instanceof Error ? err.message : String(err)}`;
      if (err instanceof MeshError && (err.status === 409 || err.status === 404)) return { ok: false, lost: true, message };
      const transient = !(err instanceof MeshError) || err.status === 0 || err.status === 429 || err.status >= 500;
      if (!transient || tries >= PAYLOAD_FETCH_TRIES || signal.aborted) return { ok: false, lost: false, message };
      await sleep((err instanceof MeshError ? err.retryAfterMs : null) ?? backoff.next(), signal);
    }
  }
}
