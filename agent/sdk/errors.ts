// Turning whatever a handler threw into the `error` object of `POST /v1/tasks/:id/fail`. It is stored in clear and
// shown to the task's submitter, so it carries the message and a few identifying fields, never a stack trace.

/** The `error` of a failed attempt: a message plus identifying fields. */
export interface TaskError {
  message: string;
  name?: string;
  code?: string | number;
  [key: string]: unknown;
}

export interface DescribedError {
  error: TaskError;
  retryable: boolean;
}

/** The mesh accepts messages up to 10,000 characters. */
const MAX_MESSAGE = 10_000;

/** Throw this (or any error with `retryable: false`) when retrying cannot help, e.g. the payload is invalid. */
export class NonRetryableError extends Error {
  readonly retryable = false;
  override name = "NonRetryableError";
}

export function describeError(thrown: unknown): DescribedError {
  const record = isRecord(thrown) ? thrown : null;
  const rawMessage = thrown instanceof Error ? thrown.message : typeof record?.message === "string" ? record.message : String(thrown);
  const error: TaskError = { message: truncate(rawMessage || "the handler failed without a message") };
  const name = thrown instanceof Error ? thrown.name : undefined;
  if (name !== undefined && name !== "Error") error.name = name;
  const code = record?.code;
  if (typeof code === "string" || typeof code === "number") error.code = code;
  // Only an explicit `retryable: false` makes a failure permanent: crashes and surprises deserve another attempt.
  return { error, retryable: record?.retryable !== false };
}

export function truncate(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE - 1)}…`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
