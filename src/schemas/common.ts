import { z } from "zod";
import { AGENT_ID, POOL_NAME as POOL_PATTERN, TASK_ID } from "../../contract/ids.ts";
import { ERROR_CODES } from "../../contract/errors.ts";

export const POOL_NAME = POOL_PATTERN;

export const PoolName = z
  .string()
  .regex(POOL_NAME, "a pool name is 1-63 characters of a-z, 0-9, _ and -, starting with a letter or digit")
  .describe("a pool name: 1-63 characters of a-z, 0-9, _ and -, starting with a letter or digit");
export const AgentId = z.string().regex(AGENT_ID, "an agent id is 1-128 characters of A-Z, a-z, 0-9, _ . : -").describe("an agent id: 1-128 characters of A-Z, a-z, 0-9, _ . : -");
/** A shard of a pool: "0", "1", ... */
export const ShardId = z.string().regex(/^(0|[1-9][0-9]{0,3})$/, "not a shard id").describe("a shard of the pool: 0, 1, ...");
export const TaskId = z.string().regex(TASK_ID, "not a task id").describe("a task id as the API gave it (it names the pool and shard)");

/**
 * Strings compared byte for byte later (idempotency keys, names): a lone UTF-16 surrogate would be stored as
 * U+FFFD and never match again, so such strings are refused.
 */
export const wellFormed = <S extends z.ZodString>(schema: S) =>
  schema.refine((s) => (s as string & { isWellFormed(): boolean }).isWellFormed(), "must be well-formed Unicode (no lone surrogates)");

/** A concurrency, rate or debounce key (submit fields, pool config keys). */
export const GateKey = wellFormed(z.string().min(1).max(128));

/** Integers in a range, from JSON or from a query string. */
export const intIn = (min: number, max: number) => z.number().int().min(min).max(max);
export const queryIntIn = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const Timestamp = z.iso.datetime().describe("ISO 8601");

export const FieldProblem = z
  .object({ field: z.string().describe("a dotted path into the request, e.g. `tasks.3.priority`, `query.limit`, `(body)`"), message: z.string() })
  .meta({ id: "FieldProblem" });

/** Any error of the contract: `{"error": {code, message, details?}}`. The per-status schemas below narrow it. */
export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      details: z.union([z.array(FieldProblem), z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))]).optional(),
    }),
  })
  .meta({ id: "Error" });

/** 400: the request failed validation; `details` lists every field and its problem. */
export const ValidationErrorSchema = z
  .object({ error: z.object({ code: z.literal("invalid_request"), message: z.string(), details: z.array(FieldProblem).min(1) }) })
  .meta({ id: "ValidationError" });

/** 409: the request contradicts the task's or the agent's current state. */
export const ConflictErrorSchema = z
  .object({
    error: z.object({
      code: z.enum(["lease_lost", "invalid_transition", "conflict"]),
      message: z.string(),
      details: z
        .object({
          status: z.string().optional().describe("lease_lost: the task's status now (`expired` for a lease past its expiry)"),
          from: z.string().optional().describe("invalid_transition: the agent's state"),
          to: z.string().optional().describe("invalid_transition: the state asked for"),
        })
        .optional(),
    }),
  })
  .meta({ id: "ConflictError" });

/** 429: a rate limit or a quota; the Retry-After header says when to try again. */
export const RateLimitErrorSchema = z
  .object({
    error: z.object({
      code: z.literal("rate_limited"),
      message: z.string(),
      details: z.object({
        scope: z.enum(["credential", "tenant", "address", "quota", "gpu_quota"]).describe("which limit: the credential's, the tenant's, the client address's (no credential), the tenant's quota of unfinished tasks, or its GPU-seconds"),
        retryAfterSeconds: z.number().int().describe("the same as the Retry-After header"),
        quota: z.number().int().optional().describe("scope quota: the tenant's quota in the pool"),
        gpuSecondsPerHour: z.number().optional().describe("scope gpu_quota: the tenant's GPU-seconds per hour in the pool"),
        usedGpuSeconds: z.number().optional().describe("scope gpu_quota: its GPU-seconds over the last hour (settled and held)"),
        field: z.string().optional().describe("scope gpu_quota: the first input that requires a GPU (`requires.gpu`, or `tasks.<n>.requires.gpu` in a batch)"),
        gpuTasks: z.number().int().optional().describe("scope gpu_quota: how many of the inputs require a GPU"),
      }),
    }),
  })
  .meta({ id: "RateLimitError" });
