import { z } from "zod";
import { TASK_STATUSES } from "../../contract/records.ts";
import { ExtendMs, LeaseToken, TaskErrorSchema } from "../../contract/wire/shapes.ts";
import { GateKey, intIn, PoolName, queryIntIn, ShardId, TaskId, Timestamp, wellFormed } from "./common.ts";

export { TaskErrorSchema } from "../../contract/wire/shapes.ts";

export const MAX_BATCH = 1000;
const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

export const Requirements = z
  .strictObject({
    capabilities: z.array(z.string().min(1).max(64)).max(32).default([]),
    cpu: z.number().min(0).max(1_000_000).default(0),
    memoryMb: intIn(0, 1_000_000_000).default(0),
    gpu: intIn(0, 1024).default(0),
  })
  .meta({ id: "Requirements" });

export const TaskType = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/, "a task type is letters, digits and _ . : / -, like content.generate");

export const SubmitTask = z
  .strictObject({
    type: TaskType,
    payload: z.unknown().optional().describe("any JSON; {} when absent"),
    priority: intIn(0, 9).default(5).describe("0-9, higher first"),
    pool: PoolName.optional().describe("defaults to the part of type before the first dot"),
    requires: Requirements.optional(),
    idempotencyKey: wellFormed(z.string().min(1).max(255)).nullish(),
    maxAttempts: intIn(1, 100).default(3),
    timeoutMs: intIn(1000, 3_600_000).default(30_000).describe("lease length"),
    delayMs: intIn(0, THIRTY_DAYS_MS).default(0),
    dependsOn: z.array(TaskId).max(100).default([]).describe("ids of tasks in the same pool"),
    fairnessKey: wellFormed(z.string().min(1).max(128)).optional().describe("fair scheduling: tasks are served round robin over their keys (default the tenant)"),
    concurrencyKey: GateKey.optional().describe("at most the pool's concurrency limit of the tenant's tasks with this key are queued or leased at once"),
    rateLimitKey: GateKey.optional().describe("at most the pool's rateLimits[key].limit leases of the tenant's tasks with this key per periodMs"),
    debounce: z
      .strictObject({
        key: GateKey,
        delayMs: intIn(0, 3_600_000).describe("the task waits this long; a later submit of the same key moves its start again"),
        maxWaitMs: intIn(0, 86_400_000).optional().describe("latest start after the first submit"),
      })
      .meta({ id: "Debounce" })
      .optional()
      .describe("while a task of the same tenant, pool, type and key was never leased, a submit replaces its payload and answers 200 with it"),
    cache: z.boolean().optional().describe("true: cacheable whatever the pool's cache.types say; false: never answered from or written to the cache"),
    cacheTags: z.array(z.string().min(1).max(64)).max(16).optional().describe("tags a purge can name (POST /v1/cache/purge)"),
    cacheVersion: z.string().max(128).optional().describe('part of the cache key (default ""): a new version misses by construction'),
    embedding: z.array(z.number()).min(1).max(4096).optional().describe("semantic cache: the task's embedding (the index's dimensions)"),
    text: z.string().min(1).max(100_000).optional().describe("semantic cache: text the pool's model embeds at the edge"),
  })
  .meta({ id: "SubmitTask" });

export const SubmitBatch = z.strictObject({ tasks: z.array(SubmitTask).min(1).max(MAX_BATCH) });

export const TaskStatus = z.enum(TASK_STATUSES);


export const Task = z
  .object({
    id: z.string(),
    type: z.string(),
    pool: z.string(),
    tenant: z.string(),
    status: TaskStatus,
    priority: z.number().int(),
    payload: z.unknown(),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    timeoutMs: z.number().int(),
    idempotencyKey: z.string().nullable(),
    dependsOn: z.array(z.string()),
    requires: z.object({ capabilities: z.array(z.string()), cpu: z.number(), memoryMb: z.number(), gpu: z.number() }),
    result: z.unknown(),
    error: TaskErrorSchema.nullable(),
    agentId: z.string().nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    runAfter: Timestamp.nullable(),
    finishedAt: Timestamp.nullable(),
    leaseExpiresAt: Timestamp.nullable(),
    shard: ShardId.describe("the shard that holds the task (its id names the one that created it)"),
    cache: z
      .object({
        level: z.enum(["l1", "l2", "l3", "semantic"]),
        key: z.string(),
        sourceTaskId: z.string(),
        similarity: z.number().optional(),
      })
      .optional()
      .describe("present when the output cache answered the submit: the level, the entry's key, the task that produced the result"),
    payloadOmitted: z.literal(true).optional().describe("the payload (kept in R2) was left out of this answer to bound its size: it is null here; GET /v1/tasks/:id gives it (an agent: GET /v1/tasks/:id/payload)"),
    resultOmitted: z.literal(true).optional().describe("the result (kept in R2) was left out of this answer to bound its size: it is null here; GET /v1/tasks/:id gives it"),
  })
  .meta({ id: "Task" });

export const LeasedTask = Task.extend({ attempt: z.number().int(), leaseToken: z.string(), leaseExpiresAt: Timestamp }).meta({ id: "LeasedTask" });

export const TaskIdParams = z.object({ id: TaskId });
export const PayloadQuery = z.object({ leaseToken: LeaseToken.describe("the task's current lease token") });
export const PayloadResponse = z.object({ id: z.string(), payload: z.unknown() }).meta({ id: "TaskPayload" });
export const ResultQuery = z.object({ waitMs: queryIntIn(0, 30_000).default(0) });


export const CompleteBody = z.strictObject({ leaseToken: LeaseToken, result: z.unknown().optional() });
export const FailBody = z.strictObject({
  leaseToken: LeaseToken,
  error: TaskErrorSchema.optional(),
  retryable: z.boolean().default(true),
});
export const ExtendBody = z.strictObject({ leaseToken: LeaseToken, extendMs: ExtendMs.optional() });
export const ExtendResponse = z.object({ leaseExpiresAt: Timestamp });

export const TasksResponse = z.object({ tasks: z.array(Task) });

export const SettleItem = z.discriminatedUnion("action", [
  z.strictObject({ action: z.literal("complete"), id: z.string().max(128), leaseToken: LeaseToken, result: z.unknown().optional() }),
  z.strictObject({
    action: z.literal("fail"),
    id: z.string().max(128),
    leaseToken: LeaseToken,
    error: TaskErrorSchema.optional(),
    retryable: z.boolean().default(true),
  }),
  z.strictObject({ action: z.literal("extend"), id: z.string().max(128), leaseToken: LeaseToken, extendMs: ExtendMs.optional() }),
]);
export const SettleBody = z.strictObject({ items: z.array(SettleItem).min(1).max(MAX_BATCH) });
export const SettleResponse = z.object({
  results: z.array(
    z.union([
      z.object({ id: z.string(), status: TaskStatus, leaseExpiresAt: Timestamp.optional() }),
      z.object({ id: z.string(), error: z.object({ code: z.enum(["not_found", "lease_lost", "forbidden"]), message: z.string() }) }),
    ]),
  ),
});
