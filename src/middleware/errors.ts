import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError, errorResponse as contractError } from "../../contract/errors.ts";

/** The contract's error response: `{"error": {code, message, details?}}` with the code's status (and Retry-After on 429). */
export function errorResponse(_c: Context, error: ApiError): Response {
  return contractError(error.toBody());
}

/**
 * Hono's onError: ApiErrors answer as themselves; Hono's own HTTP exceptions are mapped onto the contract's
 * codes; anything else is a bug, logged here and answered as a bare 500 without internals.
 */
export function onError(err: Error, c: Context): Response {
  if (err instanceof ApiError) return errorResponse(c, err);
  if (err instanceof HTTPException) {
    const code = err.status === 413 ? "payload_too_large" : err.status === 401 ? "unauthorized" : err.status === 404 ? "not_found" : "invalid_request";
    const message = err.message || "the request was rejected";
    return errorResponse(c, new ApiError(code, message, code === "invalid_request" ? [{ field: "(request)", message }] : undefined));
  }
  console.error(`${c.req.method} ${new URL(c.req.url).pathname} failed`, err);
  return contractError(new ApiError("internal").toBody());
}

export function onNotFound(c: Context): Response {
  return errorResponse(c, new ApiError("not_found", `no route ${c.req.method} ${new URL(c.req.url).pathname}`));
}
