/**
 * The error vocabulary of the mesh (../shared/API.md, "Conventions"), written once: each code has one HTTP status
 * and one canonical message. HTTP answers, the coordinators' RPC outcomes and the WebSocket `error` frames all
 * speak it, so a coordinator can say exactly what a client sees, whatever path the request took.
 */
export const ERRORS = {
  invalid_request: { status: 400, message: "the request is not valid" },
  unauthorized: { status: 401, message: "send Authorization: Bearer <credential>" },
  forbidden: { status: 403, message: "the credential does not allow this" },
  not_found: { status: 404, message: "no such resource" },
  lease_lost: { status: 409, message: "the lease token is not the task's current lease" },
  invalid_transition: { status: 409, message: "the agent lifecycle does not allow this change" },
  conflict: { status: 409, message: "this contradicts the current state" },
  payload_too_large: { status: 413, message: "the request body is too large" },
  rate_limited: { status: 429, message: "too many requests; retry after the Retry-After header's seconds" },
  internal: { status: 500, message: "internal error; it has been logged" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

/** The status of each code, for callers that only need that. */
export const ERROR_STATUS: { readonly [C in ErrorCode]: (typeof ERRORS)[C]["status"] } = Object.fromEntries(
  ERROR_CODES.map((code) => [code, ERRORS[code].status]),
) as { [C in ErrorCode]: (typeof ERRORS)[C]["status"] };

/** One problem of a request: the field (a dotted path) and what is wrong with it; `index` into a batch's slice. */
export interface FieldProblem {
  field: string;
  message: string;
  index?: number;
}

/** Per-field problems of a request (always for 400), or a few facts about the state that refused it. */
export type ErrorDetails = FieldProblem[] | Record<string, string | number | boolean | null>;

/** The `error` member of every error answer: `{"error": {code, message, details?}}`. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: ErrorDetails;
}

/** A failure a client caused or must know about; carried across RPC and sockets as its {@link ErrorBody}. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  /** Without a message, the code's canonical one. */
  constructor(code: ErrorCode, message: string = ERRORS[code].message, details?: ErrorDetails) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  toBody(): ErrorBody {
    return this.details === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, details: this.details };
  }

  static fromBody(body: ErrorBody): ApiError {
    return new ApiError(body.code, body.message, body.details);
  }
}

/**
 * What an RPC method of a Durable Object answers. Errors travel as data rather than as thrown exceptions,
 * because an exception crossing RPC loses its class and fields.
 */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ErrorBody };

export const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });

export const failed = (error: ApiError): { ok: false; error: ErrorBody } => ({ ok: false, error: error.toBody() });

/** Runs `fn`, turning an ApiError into an error outcome; anything else is a bug and is rethrown. */
export function attempt<T>(fn: () => T): Outcome<T> {
  try {
    return ok(fn());
  } catch (err) {
    if (err instanceof ApiError) return failed(err);
    throw err;
  }
}

/** Unwraps an outcome, turning an error outcome back into an ApiError. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw ApiError.fromBody(outcome.error);
}

/** Whether a value is an error code of this vocabulary (for bodies read back from elsewhere). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERRORS, code);
}

/** The seconds a refusal asks the caller to wait (429: `details.retryAfterSeconds`), or null. */
export function retryAfterOf(body: ErrorBody): number | null {
  const details = body.details;
  return details && !Array.isArray(details) && typeof details.retryAfterSeconds === "number" ? details.retryAfterSeconds : null;
}

/** An error as an HTTP answer of the contract: the code's status, `{"error": ...}`, and Retry-After on 429. */
export function errorResponse(body: ErrorBody): Response {
  const retryAfter = retryAfterOf(body);
  return Response.json({ error: body }, { status: ERRORS[body.code].status, headers: retryAfter === null ? {} : { "Retry-After": String(retryAfter) } });
}

/** Reads an error answer of the contract back (another part of the mesh answered it); anything else is internal. */
export async function errorOfResponse(res: Response): Promise<ApiError> {
  const body = (await res.json().catch(() => null)) as { error?: Partial<ErrorBody> } | null;
  const error = body?.error;
  if (error && isErrorCode(error.code) && typeof error.message === "string") return new ApiError(error.code, error.message, error.details);
  return new ApiError("internal");
}
