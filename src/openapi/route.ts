import type { Context, Hono } from "hono";
import { z } from "zod";
import type { AppEnv, AuditNote, Caller } from "../env.ts";
import { ApiError } from "../../contract/errors.ts";
import { SYSTEM_TENANT } from "../../lib/audit/records.ts";
import { readJsonBody } from "../middleware/body.ts";
import type { RESPONSE_HEADERS } from "./responses.ts";
import { actorName, authenticate, claimedKeyId } from "../security/credentials.ts";
import { recordAudit } from "../security/audit.ts";
import { allows, PUBLIC, rulesFor } from "../security/permissions.ts";
import { enforceAddressLimit, enforceRateLimits } from "../security/rate-limit.ts";

export type Method = "get" | "post" | "put" | "patch" | "delete";

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** Content type when not JSON (e.g. the Prometheus exposition). */
  contentType?: string;
  /** Headers of the answer, by name: names of `#/components/headers`. */
  headers?: Record<string, keyof typeof RESPONSE_HEADERS>;
}

export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: Method;
  /** Hono path, e.g. `/v1/tasks/:id`. */
  path: string;
  summary: string;
  tag: string;
  /**
   * The audit action recorded for every call of this route, whatever its outcome (state-changing and
   * privileged routes have one). The target is what the handler notes with `c.set("audit", ...)`, else the
   * path parameters.
   */
  audit?: string;
  /** Path parameters; a value that does not parse answers 404, like an unknown id. */
  params?: P;
  query?: Q;
  body?: B;
  responses: Record<number, ResponseSpec>;
}

export type AnySpec = RouteSpec<z.ZodType, z.ZodType, z.ZodType> & { public: boolean };

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

  private readonly app: Hono<AppEnv>;

  constructor(app: Hono<AppEnv>) {
    this.app = app;
  }

  add<P extends z.ZodType = z.ZodObject, Q extends z.ZodType = z.ZodObject, B extends z.ZodType = z.ZodUndefined>(
    spec: RouteSpec<P, Q, B>,
    handler: Handler<P, Q, B>,
  ): void {
    const rule = rulesFor(spec.method, spec.path);
    this.specs.push({ ...(spec as unknown as AnySpec), public: rule === PUBLIC });
    this.app.on(spec.method.toUpperCase(), spec.path, async (c) => {
      if (rule === PUBLIC) await enforceAddressLimit(c.env, c.req.header("cf-connecting-ip") ?? null);
      else {
        const caller = await this.admit(c);
        // The bootstrap key is the super-admin: it passes every role check.
        if (!caller.allTenants && !allows(rule, caller.roles)) {
          await this.audit(c, spec, caller, "forbidden");
          throw new ApiError("forbidden", `the roles ${caller.roles.join(", ")} may not ${spec.method.toUpperCase()} ${spec.path}`);
        }
      }
      try {
        let params = {} as z.output<P>;
        if (spec.params) {
          const parsed = spec.params.safeParse(c.req.param());
          if (!parsed.success) throw new ApiError("not_found", `nothing at ${new URL(c.req.url).pathname}`, issuesOf(parsed.error));
          params = parsed.data;
        }
        const query = spec.query ? validate(spec.query, c.req.query(), "query") : ({} as z.output<Q>);
        const body = spec.body ? validate(spec.body, await readJsonBody(c), "body") : (undefined as z.output<B>);
        const response = await handler(c, { params, query, body });
        if (rule !== PUBLIC) await this.audit(c, spec, c.var.caller, "success");
        return response;
      } catch (err) {
        if (rule !== PUBLIC) await this.audit(c, spec, c.var.caller, err instanceof ApiError ? err.code : "internal");
        throw err;
      }
    });
  }

  /** Authenticates and rate-limits the request; a failed authentication is audited in the `_system` chain. */
  private async admit(c: Context<AppEnv>): Promise<Caller> {
    let caller: Caller;
    try {
      caller = await authenticate(c);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const ip = c.req.header("cf-connecting-ip") ?? null;
      // Failed attempts are limited per address before they reach the audit log, so a flood cannot fill it.
      await enforceRateLimits(c.env, { tenant: null, credential: `ip:${ip ?? "unknown"}` });
      const key = claimedKeyId(c.req.raw);
      await recordAudit(c.env, SYSTEM_TENANT, {
        actor: key ? `key:${key}` : "anonymous",
        action: "auth.failed",
        target: `${c.req.method} ${new URL(c.req.url).pathname}`,
        outcome: err.message,
        ip,
        at: Date.now(),
      });
      throw err;
    }
    c.set("caller", caller);
    await enforceRateLimits(c.env, { tenant: caller.tenant, credential: caller.keyId ?? "admin-key" });
    return caller;
  }

  private async audit(c: Context<AppEnv>, spec: { audit?: string; method: Method; path: string }, caller: Caller | undefined, outcome: string): Promise<void> {
    const action = outcome === "forbidden" ? (spec.audit ?? `${spec.method} ${spec.path}`) : spec.audit;
    if (!action || !caller) return;
    const note = c.get("audit") as AuditNote | undefined;
    if (note?.skip) return;
    const target = note?.target ?? (Object.values(c.req.param() as Record<string, string>).join("/") || spec.path);
    const entry = { actor: actorName(caller), action, target, outcome, ip: c.req.header("cf-connecting-ip") ?? null, at: Date.now() };
    // The record goes to the acting tenant's chain. When the bootstrap key acts on another tenant's keys, or
    // anyone (the bootstrap key, a shared-fleet operator) acted on another tenant's task, that tenant's auditors
    // must see it too.
    const keysOf = (c.req.param() as Record<string, string | undefined>).tenant;
    const subject = caller.allTenants && keysOf !== undefined ? keysOf : note?.tenant;
    const chains = subject !== undefined && subject !== caller.tenant ? [caller.tenant, subject] : [caller.tenant];
    const others = (note?.subjects ?? []).filter((s) => !chains.includes(s.tenant));
    await Promise.all([
      ...chains.map((chain) => recordAudit(c.env, chain, entry)),
      ...others.map((s) => recordAudit(c.env, s.tenant, { ...entry, target: s.target })),
    ]);
  }

}
