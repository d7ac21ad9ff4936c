// What an agent reports for a finished handler: complete with its result, or fail with its error.
import type { SettleItem } from "./api.ts";
import { truncate } from "./errors.ts";
import type { RunResult } from "./executor.ts";
import type { LeasedTask } from "./wire.ts";

/**
 * A result must fit in one request (the mesh takes bodies of up to 10 MiB) with its envelope. One larger than a
 * WebSocket frame goes over HTTP (ws-connection.ts); over 128 KiB the mesh keeps it in R2 (docs/payloads.md).
 */
export const MAX_RESULT_BYTES = 10_000_000;

export function outcomeOf(task: Pick<LeasedTask, "id" | "leaseToken">, result: RunResult): SettleItem {
  const base = { id: task.id, leaseToken: task.leaseToken };
  if (!result.ok) return { action: "fail", ...base, error: { ...result.error, message: truncate(result.error.message) }, retryable: result.retryable };
  let text: string | undefined;
  try {
    text = JSON.stringify(result.result);
  } catch (err) {
    // BigInts and cycles: the same value would fail again, so retrying cannot help.
    return { action: "fail", ...base, error: { message: `the handler's result is not JSON: ${err instanceof Error ? err.message : String(err)}`, code: "bad_result" }, retryable: false };
  }
  const bytes = text === undefined ? 0 : Buffer.byteLength(text);
  if (bytes > MAX_RESULT_BYTES) {
    return { action: "fail", ...base, error: { message: `the handler's result is ${bytes} bytes of JSON; at most ${MAX_RESULT_BYTES} fit in a request`, code: "result_too_large" }, retryable: false };
  }
  // `undefined` (a handler without a return value) is sent as null, which JSON can carry.
  return { action: "complete", ...base, result: text === undefined ? null : result.result };
}
