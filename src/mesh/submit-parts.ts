/**
 * The pieces of a submit (submit.ts): the validated submission, one task on its way to a shard, the groups of a
 * call by shard, and how shards' answers are turned into the caller's.
 */
import type { ApiError, ErrorDetails } from "../../contract/errors.ts";
import { shardName } from "../../contract/ids.ts";
import type { WorkflowRef } from "../../contract/workflows.ts";
import type { CacheFill, Requirements, RouteReason, SubmitOutcome, TaskInput } from "../../contract/records.ts";

/** A validated submission (the route's schema applied its defaults), payload not yet JSON text. */
export interface Submission {
  type: string;
  payload?: unknown;
  priority: number;
  pool?: string | undefined;
  requires?: Partial<Requirements> | undefined;
  idempotencyKey?: string | null | undefined;
  maxAttempts: number;
  timeoutMs: number;
  delayMs: number;
  dependsOn: string[];
  /** Round robin key inside a priority (default the tenant). */
  fairnessKey?: string | undefined;
  concurrencyKey?: string | undefined;
  rateLimitKey?: string | undefined;
  debounce?: { key: string; delayMs: number; maxWaitMs?: number | undefined } | undefined;
  /** Set by the output cache for a cacheable task that missed (cache/submit.ts): what its success fills. */
  fill?: CacheFill | undefined;
  /** A workflow step's task (contract/workflows.ts): its end is reported to the run. */
  workflow?: WorkflowRef | undefined;
  /** Answered from the output cache: no task is submitted for it. */
  hit?: SubmitOutcome | undefined;
}

export interface Item {
  index: number;
  pool: string;
  input: TaskInput;
  plaintext: string;
  shard: number;
  reason: RouteReason;
  /** Pinned to its shard: it has dependencies there. */
  pinned: boolean;
  /** The key's claim made here (its id is the task's). */
  claimed: boolean;
  /** The payload as sealed for its row (once per call: an envelope, or a reference to the R2 object written for it). */
  sealed?: string;
  /** A shard created the task with this payload: its R2 object, if any, is the task's now. */
  stored: boolean;
  /** A shard call carrying it threw: it may have been created all the same. */
  uncertain?: boolean;
}

/**
 * Problems a shard reported with indexes into its slice, re-addressed to the caller's fields: `tasks.<i>.<field>`
 * in a batch, the field itself for a single task (the index is the shard's, not part of the answer).
 */
export function readdress(details: ErrorDetails | undefined, indexes: readonly number[], batch: boolean): ErrorDetails | undefined {
  // A refusal of the part that names one of its inputs (the GPU quota): the input's place in the call.
  if (details && !Array.isArray(details) && typeof details.index === "number" && typeof details.field === "string") {
    const { index, ...rest } = details;
    return { ...rest, field: batch ? `tasks.${indexes[index]}.${details.field}` : details.field };
  }
  if (!Array.isArray(details)) return details;
  return details.map((d) => (d.index === undefined ? d : { field: batch ? `tasks.${indexes[d.index]}.${d.field}` : d.field, message: d.message }));
}

export function isKeysIndexed(out: { ok: boolean; error?: { details?: ErrorDetails } }): boolean {
  const details = out.ok ? undefined : out.error?.details;
  return !!details && !Array.isArray(details) && details.keysIndexed === true;
}

/**
 * What the shared state takes from a payload before it is sealed (docs/mesh.md, "Shared state"): `imageId`, a string
 * of 1-256 characters, and `embedding`, 1-4096 finite numbers. Anything else of that name is left alone.
 */
export function sharedStateFields(payload: unknown): { imageId?: string; embedding?: number[] } {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return {};
  const p = payload as { imageId?: unknown; embedding?: unknown };
  const out: { imageId?: string; embedding?: number[] } = {};
  if (typeof p.imageId === "string" && p.imageId.length >= 1 && p.imageId.length <= 256) out.imageId = p.imageId;
  if (Array.isArray(p.embedding) && p.embedding.length >= 1 && p.embedding.length <= 4096 && p.embedding.every((x) => typeof x === "number" && Number.isFinite(x))) out.embedding = p.embedding as number[];
  return out;
}

export interface Group {
  pool: string;
  shard: number;
  items: Item[];
}

export interface Refusal {
  group: Group;
  why: "draining" | "quota" | "keys";
  error: ApiError;
}

export function groupByShard(items: readonly Item[]): Group[] {
  const groups = new Map<string, Group>();
  for (const item of items) {
    const key = shardName(item.pool, item.shard);
    const group = groups.get(key) ?? { pool: item.pool, shard: item.shard, items: [] };
    group.items.push(item);
    groups.set(key, group);
  }
  return [...groups.values()];
}
