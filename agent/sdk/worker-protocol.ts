// Messages between the agent and its worker threads (structured clone, not JSON).
import type { RunResult } from "./executor.ts";

export interface WorkerStart {
  /** URL of the handlers module to import. */
  moduleUrl: string;
}

export type ToWorker =
  | { kind: "run"; runId: number; taskId: string; type: string; attempt: number; payload: unknown }
  | { kind: "abort"; runId: number; name: string; message: string };

export type FromWorker =
  | { kind: "ready"; types: string[] }
  | { kind: "load_failed"; message: string }
  | { kind: "done"; runId: number; result: RunResult };

export function isFromWorker(value: unknown): value is FromWorker {
  if (typeof value !== "object" || value === null || !("kind" in value)) return false;
  return value.kind === "ready" || value.kind === "load_failed" || value.kind === "done";
}

export function isToWorker(value: unknown): value is ToWorker {
  if (typeof value !== "object" || value === null || !("kind" in value)) return false;
  return value.kind === "run" || value.kind === "abort";
}
