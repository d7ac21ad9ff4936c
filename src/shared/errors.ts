/**
 * The error vocabulary of the HTTP contract (../shared/API.md, "Conventions"): one code per status,
 * shared by the Worker and the Durable Objects so a coordinator can say exactly what a client sees.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  lease_lost: 409,
  invalid_transition: 409,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** Per-field problems of a request, or a few facts about the state that refused it. */
export type ErrorDetails = { field: string; message: string; index?: number }[] | Record<string, string | number | boolean | null>;

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: ErrorDetails;
}

/** A failure a client caused or must know about; carried across RPC as plain data. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetails,
  ) {
    super(message);
    this.name = "ApiError";
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toBody(): ErrorBody {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/**
 * What a coordinator's RPC method answers. Errors travel as data rather than as thrown exceptions,
 * because an exception crossing RPC loses its class and fields.
 */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ErrorBody };

export const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });

/** Runs `fn`, turning an ApiError into an error outcome; anything else is a bug and is rethrown. */
export function attempt<T>(fn: () => T): Outcome<T> {
  try {
    return ok(fn());
  } catch (err) {
    if (err instanceof ApiError) return { ok: false, error: err.toBody() };
    throw err;
  }
}

/** Unwraps an outcome in the Worker, turning an error outcome back into an ApiError. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw new ApiError(outcome.error.code, outcome.error.message, outcome.error.details);
}
