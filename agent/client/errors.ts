// How a refused request reaches callers of the SDK and the typed client: the mesh's error (API.md, "Errors").
import { z } from "zod";

/** A refused request (`status` and the mesh's error `code`), or `status` 0 / code `unreachable` when no answer came. */
export class MeshError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  /** From `Retry-After` on 429, in ms. */
  readonly retryAfterMs: number | null;

  constructor(status: number, code: string, message: string, details: unknown = undefined, retryAfterMs: number | null = null) {
    super(message);
    this.name = "MeshError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The error shape every non-2xx answer has (`{"error": {"code", "message", "details"}}`). */
export const ErrorAnswer = z.looseObject({ error: z.looseObject({ code: z.string(), message: z.string(), details: z.unknown().optional() }) });

/** The MeshError of an answer that is not 2xx, from its parsed body (undefined when it was not JSON). */
export function errorFrom(res: Response, parsed: unknown, text: string): MeshError {
  const retryAfter = Number(res.headers.get("retry-after"));
  const retryAfterMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : null;
  const shaped = ErrorAnswer.safeParse(parsed);
  if (shaped.success) {
    const { code, message, details } = shaped.data.error;
    return new MeshError(res.status, code, message, details, retryAfterMs);
  }
  // Not the mesh's error shape: a proxy or a wrong URL answered.
  return new MeshError(res.status, `http_${res.status}`, `HTTP ${res.status} ${res.statusText}: ${text.slice(0, 200)}`.trim(), undefined, retryAfterMs);
}

/** fetch reports "fetch failed" and hides the reason (ECONNREFUSED, ENOTFOUND, ...) in `cause`. */
export function causeOf(err: unknown): string {
  if (err instanceof Error) {
    const cause: unknown = err.cause;
    if (cause instanceof Error) return cause.message;
    return err.message;
  }
  return String(err);
}

export function unreachable(baseUrl: string, err: unknown): MeshError {
  return new MeshError(0, "unreachable", `cannot reach ${baseUrl}: ${causeOf(err)}`);
}
