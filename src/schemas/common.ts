import { z } from "zod";
import { AGENT_ID, POOL_NAME as POOL_PATTERN, TASK_ID } from "../../contract/ids.ts";
import { ERROR_CODES } from "../../contract/errors.ts";

export const POOL_NAME = POOL_PATTERN;

export const PoolName = z.string().regex(POOL_NAME, "a pool name is 1-63 characters of a-z, 0-9, _ and -, starting with a letter or digit");
export const AgentId = z.string().regex(AGENT_ID, "an agent id is 1-128 characters of A-Z, a-z, 0-9, _ . : -");
export const TaskId = z.string().regex(TASK_ID, "not a task id");

/**
 * Strings compared byte for byte later (idempotency keys, names): a lone UTF-16 surrogate would be stored as
 * U+FFFD and never match again, so such strings are refused.
 */
export const wellFormed = <S extends z.ZodString>(schema: S) =>
  schema.refine((s) => (s as string & { isWellFormed(): boolean }).isWellFormed(), "must be well-formed Unicode (no lone surrogates)");

/** Integers in a range, from JSON or from a query string. */
export const intIn = (min: number, max: number) => z.number().int().min(min).max(max);
export const queryIntIn = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const Timestamp = z.iso.datetime().describe("ISO 8601");

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: "Error" });
