import type { Context, Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import { ApiError } from "../shared/errors";
import { readJsonBody } from "../middleware/body";

export type Method = "get" | "post" | "put" | "patch" | "delete";

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** Content type when not JSON (e.g. the Prometheus exposition). */
  contentType?: string;
}

export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: Method;
  /** Hono path, e.g. `/v1/tasks/:id`. */
  path: string;
  summary: string;
  tag: string;
  /** Reachable without a credential. */
  public?: boolean;
  /** Path parameters; a value that does not parse answers 404, like an unknown id. */
  params?: P;
  query?: Q;
  body?: B;
  responses: Record<number, ResponseSpec>;
}

export type AnySpec = RouteSpec<z.ZodType, z.ZodType, z.ZodType>;

export interface RouteInput<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  params: z.output<P>;
  query: z.output<Q>;
  body: z.output<B>;
}

type Handler<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> = (
  c: Context<AppEnv>,
  input: RouteInput<P, Q, B>,
) => Response | Promise<Response>;

/** Each problem of a failed validation as `{field, message}`, with the field as a dotted path. */
export function issuesOf(error: z.ZodError, prefix = ""): { field: string; message: string }[] {
  return error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter((p) => p !== "").join(".");
    const keys = issue.code === "unrecognized_keys" ? ` (${issue.keys.join(", ")})` : "";
    return { field: path || "(root)", message: `${issue.message}${keys}` };
  });
}

function validate<S extends z.ZodType>(schema: S, value: unknown, where: "query" | "body"): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ApiError("invalid_request", `the request ${where} is not valid`, issuesOf(parsed.error, where === "query" ? "query" : ""));
}

/**
 * The routes of the API, each declared once: the declaration registers the Hono handler with its validation
 * and is the source of the OpenAPI document, so the two cannot drift apart.
 */
export class Routes {
  readonly specs: AnySpec[] = [];

  constructor(private readonly app: Hono<AppEnv>) {}

  add<P extends z.ZodType = z.ZodObject, Q extends z.ZodType = z.ZodObject, B extends z.ZodType = z.ZodUndefined>(
    spec: RouteSpec<P, Q, B>,
    handler: Handler<P, Q, B>,
  ): void {
    this.specs.push(spec as unknown as AnySpec);
    this.app.on(spec.method.toUpperCase(), spec.path, async (c) => {
      let params = {} as z.output<P>;
      if (spec.params) {
        const parsed = spec.params.safeParse(c.req.param());
        if (!parsed.success) throw new ApiError("not_found", `nothing at ${new URL(c.req.url).pathname}`, issuesOf(parsed.error));
        params = parsed.data;
      }
      const query = spec.query ? validate(spec.query, c.req.query(), "query") : ({} as z.output<Q>);
      const body = spec.body ? validate(spec.body, await readJsonBody(c), "body") : (undefined as z.output<B>);
      return handler(c, { params, query, body });
    });
  }
}
