/**
 * The error answers of every operation, generated from the route table so that a new route cannot forget them:
 * each status the request pipeline can give the route (docs/api.md, "The request pipeline"), plus the ones the
 * route declares itself, each in the contract's error shape with `details` typed per code.
 */
import { ErrorSchema } from "../schemas/common.ts";
import type { AnySpec } from "./route.ts";

type Json = Record<string, unknown>;

const schema = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string): Json => ({ "application/json": { schema: schema(name) } });

export const RESPONSE_HEADERS = {
  RetryAfter: { description: "Seconds to wait before trying again", schema: { type: "integer", minimum: 1 } },
  Cache: {
    description: "How the output cache answered a cacheable submit: hit-l1, hit-l2, hit-l3, hit-semantic or miss (absent: not cacheable)",
    schema: { type: "string", enum: ["hit-l1", "hit-l2", "hit-l3", "hit-semantic", "miss"] },
  },
  Shard: {
    description: "The shard the task went to (`0`, `1`, ...); for a batch, every shard its tasks went to, comma-separated",
    schema: { type: "string", pattern: "^[0-9]+(,[0-9]+)*$" },
  },
} satisfies Record<string, Json>;

/** The shared error responses (`#/components/responses/...`). */
export const ERROR_RESPONSES: Record<string, Json> = {
  BadRequest: { description: "invalid_request: the body, query or a value failed validation; `details` lists each field", content: json("ValidationError") },
  Unauthorized: { description: "unauthorized: no credential, or one that is not valid (expired, revoked, forged)", content: json("Error") },
  Forbidden: { description: "forbidden: the credential's roles or bindings do not allow this", content: json("Error") },
  NotFound: { description: "not_found: nothing at this path (an id or name that does not parse, or another tenant's)", content: json("Error") },
  Conflict: { description: "lease_lost, invalid_transition or conflict: the request contradicts the current state", content: json("ConflictError") },
  PayloadTooLarge: { description: "payload_too_large: the body is over the limit", content: json("Error") },
  TooManyRequests: {
    description: "rate_limited: a rate limit or a quota; wait the Retry-After seconds",
    headers: { "Retry-After": { $ref: "#/components/headers/RetryAfter" } },
    content: json("RateLimitError"),
  },
  InternalError: { description: "internal: a fault of the mesh, logged; the body says no more", content: json("Error") },
  OtherError: { description: "any other error, in the contract's shape", content: json("Error") },
};

const NAME_OF_STATUS: Record<number, string> = { 400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 413: "PayloadTooLarge", 429: "TooManyRequests", 500: "InternalError" };

const ref = (name: string, description?: string): Json => ({ $ref: `#/components/responses/${name}`, ...(description ? { description } : {}) });

/** The error responses of one operation, by status. */
export function errorResponsesOf(spec: AnySpec): Json {
  const out: Record<string, Json> = {};
  if (spec.body || spec.query) out["400"] = ref("BadRequest");
  if (!spec.public) {
    out["401"] = ref("Unauthorized");
    out["403"] = ref("Forbidden");
  }
  if (spec.params) out["404"] = ref("NotFound");
  if (spec.body) out["413"] = ref("PayloadTooLarge");
  // Authenticated calls count against their credential and tenant, the others against the client's address.
  out["429"] = ref("TooManyRequests");
  // What the route declares itself, in the shape of its status.
  for (const [status, res] of Object.entries(spec.responses)) {
    if (res.schema !== ErrorSchema) continue;
    const name = NAME_OF_STATUS[Number(status)];
    if (!name) throw new Error(`${spec.method} ${spec.path}: no shared error response for status ${status}`);
    out[status] = ref(name, `${(ERROR_RESPONSES[name]!.description as string).split(":")[0]}: ${res.description}`);
  }
  out["500"] = ref("InternalError");
  out.default = ref("OtherError");
  return out;
}
