// Shared by the handler modules of the local fleet (`daa agent --handlers <module>`, see ../shared/API.md,
// "Command line"): a module's default export maps task types to async functions; a thrown error fails the attempt,
// and an error with `retryable: false` sends the task straight to the dead letter queue instead of being retried.
import type { z } from "zod";

import { NonRetryableError } from "../sdk/errors.ts";

export type { Handler, HandlerContext, HandlerMap } from "../sdk/types.ts";

/** The task's input is wrong: retrying the same payload cannot help, so the task is not retried. */
export class InputError extends NonRetryableError {
  /** Reported with the failure (the SDK passes `code` on), so clients can tell bad input from a crash. */
  readonly code: string = "invalid_payload";
  override name = "InputError";
}

/**
 * Checks a payload against its schema and returns the parsed value, or throws an `InputError` that names every
 * offending field, e.g. `invalid payload: template: Invalid input: expected string, received undefined`.
 */
export function parsePayload<Schema extends z.ZodType>(schema: Schema, payload: unknown): z.output<Schema> {
  const parsed = schema.safeParse(payload);
  if (parsed.success) return parsed.data;
  // One problem per field: the first says what is wrong; later checks on a value of the wrong type add only noise.
  const problems = new Map<string, string>();
  for (const issue of parsed.error.issues) {
    const where = issue.path.length > 0 ? issue.path.map(String).join(".") : "payload";
    if (!problems.has(where)) problems.set(where, `${where}: ${issue.message}`);
  }
  throw new InputError(`invalid payload: ${[...problems.values()].join("; ")}`);
}
