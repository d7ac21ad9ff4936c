import { PERMISSIONS, PUBLIC, type Role } from "../../src/security/permissions";
import { type Json, SchemaDoc } from "./schema";

/**
 * What a request must get, computed from the request as sent and the published contract only:
 * - the routes and their parameter and body schemas come from /openapi.json, the roles from the permission table;
 * - the order of checks is the documented pipeline (docs/api.md, "The request pipeline"): route (404),
 *   credential (401), role (403), path values (404), query (400), body (413, then 400);
 * - what is left may answer any documented 4xx or one of the route's 2xx.
 * 429 may come from any step after authentication (rate limits, quotas).
 */

export const MAX_BODY_BYTES = 10 * 1024 * 1024;

/** API.md, "Conventions": each documented status and the codes it may carry. */
export const CODES: Readonly<Record<number, readonly string[]>> = {
  400: ["invalid_request"],
  401: ["unauthorized"],
  403: ["forbidden"],
  404: ["not_found"],
  409: ["lease_lost", "invalid_transition", "conflict"],
  413: ["payload_too_large"],
  429: ["rate_limited"],
};
export const DOCUMENTED_4XX = Object.keys(CODES).map(Number);

export interface Param {
  name: string;
  in: "path" | "query";
  required: boolean;
  schema: Json;
}

export interface Route {
  key: string;
  method: string;
  /** Hono form: `/v1/tasks/:id`. */
  path: string;
  segments: string[];
  params: Param[];
  query: Param[];
  body?: Json;
  success: number[];
  /** Every status the document names for the route, with the answer's schema (`$ref`s resolved). */
  documented: Map<number, Json | null>;
  public: boolean;
  roles: readonly Role[] | typeof PUBLIC;
}

/** The statuses of an operation's responses and the JSON schema of each (null: no JSON body). */
function documentedOf(doc: Json, responses: Record<string, Json>): Map<number, Json | null> {
  const out = new Map<number, Json | null>();
  for (const [status, response] of Object.entries(responses)) {
    if (!/^[0-9]{3}$/.test(status)) continue;
    const ref = typeof response.$ref === "string" ? response.$ref.replace("#/components/responses/", "") : null;
    const resolved = ref === null ? response : doc.components?.responses?.[ref];
    if (!resolved) throw new Error(`unresolved response ${response.$ref}`);
    out.set(Number(status), resolved.content?.["application/json"]?.schema ?? null);
  }
  return out;
}

export function routesOf(doc: Json): Route[] {
  const routes: Route[] = [];
  for (const [openPath, ops] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
    for (const [method, op] of Object.entries(ops)) {
      const path = openPath.replace(/\{(\w+)\}/g, ":$1");
      const key = `${method.toUpperCase()} ${path}`;
      const params = (op.parameters ?? []) as Param[];
      const rule = PERMISSIONS[key];
      if (rule === undefined) throw new Error(`${key} is served but has no permission rule`);
      routes.push({
        key,
        method: method.toUpperCase(),
        path,
        segments: path.split("/"),
        params: params.filter((p) => p.in === "path"),
        query: params.filter((p) => p.in === "query"),
        body: op.requestBody?.content?.["application/json"]?.schema,
        success: Object.keys(op.responses ?? {})
          .map(Number)
          .filter((s) => s < 300),
        documented: documentedOf(doc, op.responses ?? {}),
        public: (op.security ?? []).length === 0,
        roles: rule,
      });
    }
  }
  return routes;
}

/** How a request was authenticated, as the fuzzer built it. */
export interface AuthLabel {
  /** Whether the credential is one the mesh must accept. */
  valid: boolean;
  /** The roles of a valid credential (the bootstrap key is admin). */
  roles?: readonly string[];
  /** The bootstrap key: the super-admin passes every role check (API.md, "Who may change what"). */
  superAdmin?: boolean;
  /** A short name of the variant, for the report. */
  variant: string;
}

export interface Sent {
  method: string;
  url: string;
  headers: Headers;
  /** The body bytes as sent (null: none). */
  body: Uint8Array | null;
  auth: AuthLabel;
}

export interface Expectation {
  /** Statuses the request may get. */
  allowed: number[];
  /** The step that decides, when one does ("no route", "credential", "role", "path", "query", "body"). */
  decidedBy: string;
  route?: Route;
  why?: string;
}

function decodings(segment: string): string[] {
  const out = new Set<string>([segment]);
  for (const decode of [decodeURIComponent, decodeURI]) {
    try {
      const once = decode(segment);
      out.add(once);
      out.add(decodeURIComponent(once));
    } catch {
      // not decodable this way
    }
  }
  return [...out];
}

function match(route: Route, pathname: string): Record<string, string> | null {
  const parts = pathname.split("/");
  if (parts.length !== route.segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const want = route.segments[i]!;
    if (want.startsWith(":")) {
      if (parts[i] === "") return null;
      params[want.slice(1)] = parts[i]!;
    } else if (want !== parts[i]) return null;
  }
  return params;
}

/** The query as the Worker reads it: the first value of each name; null when a value is not decodable. */
function queryOf(search: string): Map<string, string> | null {
  const q = new Map<string, string>();
  if (/%(?![0-9A-Fa-f]{2})/.test(search)) return null;
  for (const part of search.replace(/^\?/, "").split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    let name = eq === -1 ? part : part.slice(0, eq);
    let value = eq === -1 ? "" : part.slice(eq + 1);
    try {
      name = decodeURIComponent(name.replace(/\+/g, " "));
      value = decodeURIComponent(value.replace(/\+/g, " "));
    } catch {
      return null;
    }
    if (name !== "" && !q.has(name)) q.set(name, value);
  }
  return q;
}

function queryValue(schema: Json, raw: string): unknown {
  const t = schema.type ?? schema.anyOf?.[0]?.type;
  return t === "integer" || t === "number" ? Number(raw) : raw;
}

export function allows(rule: Route["roles"], roles: readonly string[]): boolean {
  return rule === PUBLIC || roles.some((r) => (rule as readonly string[]).includes(r));
}

export function expectationOf(sent: Sent, routes: readonly Route[], schemas: SchemaDoc): Expectation {
  const url = new URL(sent.url);
  const method = sent.method === "HEAD" ? "GET" : sent.method;
  const matched = routes.map((r) => ({ r, params: r.method === method ? match(r, url.pathname) : null })).filter((m) => m.params !== null);
  if (matched.length === 0) return { allowed: [404], decidedBy: "no route" };
  const { r: route, params } = matched[0]!;
  // Every route may be rate limited: a credential and its tenant, or a client address on the public routes.
  const limited = [429];
  const rest = { allowed: [...route.success, ...DOCUMENTED_4XX], decidedBy: "handler", route };
  if (matched.length > 1) return { ...rest, decidedBy: "several routes" };
  if (!route.public) {
    if (!sent.auth.valid) return { allowed: [401, 429], decidedBy: "credential", route };
    if (!sent.auth.superAdmin && !allows(route.roles, sent.auth.roles ?? [])) return { allowed: [403, 429], decidedBy: "role", route };
  }
  for (const p of route.params) {
    const raw = params![p.name]!;
    const pattern = typeof p.schema["x-pattern"] === "string" ? new RegExp(p.schema["x-pattern"]) : null;
    if (!decodings(raw).some((v) => schemas.validate(p.schema, v) && (pattern === null || pattern.test(v)))) {
      return { allowed: [404, ...limited], decidedBy: "path", route, why: `${p.name}=${raw.slice(0, 80)}` };
    }
  }
  if (route.query.length > 0) {
    const q = queryOf(url.search);
    if (q === null) return rest;
    for (const p of route.query) {
      const raw = q.get(p.name);
      if (raw === undefined) {
        if (p.required) return { allowed: [400, ...limited], decidedBy: "query", route, why: `missing ${p.name}` };
        continue;
      }
      const why: string[] = [];
      if (!schemas.validate(p.schema, queryValue(p.schema, raw), why)) return { allowed: [400, ...limited], decidedBy: "query", route, why: `${p.name}: ${why[0]}` };
    }
  }
  if (route.body) {
    const declared = sent.headers.get("content-length");
    const size = sent.body?.byteLength ?? 0;
    if ((declared !== null && Number(declared) > MAX_BODY_BYTES) || size > MAX_BODY_BYTES) return { allowed: [413, ...limited], decidedBy: "body size", route };
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(sent.body ?? new Uint8Array());
    } catch {
      return { allowed: [400, ...limited], decidedBy: "body", route, why: "not UTF-8" };
    }
    let value: unknown = {};
    if (text.trim() !== "") {
      try {
        value = JSON.parse(text);
      } catch {
        return { allowed: [400, ...limited], decidedBy: "body", route, why: "not JSON" };
      }
    }
    const why: string[] = [];
    if (!schemas.validate(route.body, value, why)) return { allowed: [400, ...limited], decidedBy: "body", route, why: why[0] };
  }
  return rest;
}

/** The security headers every answer but a 101 carries (docs/api.md, "Response headers and CORS"). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  "cross-origin-opener-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
};

/** Text that must never reach a client: stack frames, SQLite and runtime internals. */
const LEAKS: readonly (string | RegExp)[] = [
  "    at ",
  /\bat [^\s()]{1,200} \([^\s()]{1,300}:\d+:\d+\)/,
  /\.(?:ts|js|mjs):\d+:\d+/,
  /SQLITE/i,
  "constraint failed",
  "no such table",
  "no such column",
  /\b(?:TypeError|RangeError|ReferenceError|SyntaxError|DataCloneError)\b/,
  /\bError: \S/,
  "Maximum call stack",
  "Durable Object",
  "durable object",
  "workerd",
];

/** Problems with one answer; empty when it is as the contract says. */
export function checkAnswer(
  sent: Sent,
  exp: Expectation,
  res: { status: number; headers: Headers; text: string },
  requestText: string,
  schemas?: SchemaDoc,
): string[] {
  const problems: string[] = [];
  const { status, headers, text } = res;
  if (status >= 500) problems.push(`5xx: ${status}`);
  else if (!exp.allowed.includes(status)) problems.push(`status ${status}, expected one of ${exp.allowed.join("/")} (decided by ${exp.decidedBy}${exp.why ? `: ${exp.why}` : ""})`);
  // The document must name every status a route answers, and the answer must fit the schema it gives for it.
  if (exp.route && exp.decidedBy !== "several routes") {
    const documented = exp.route.documented;
    if (!documented.has(status)) problems.push(`status ${status} is not documented for ${exp.route.key}`);
    const schema = documented.get(status);
    if (schema && schemas && sent.method !== "HEAD" && (headers.get("content-type") ?? "").includes("application/json")) {
      const why: string[] = [];
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined;
      }
      if (value !== undefined && !schemas.validate(schema, value, why)) problems.push(`answer does not fit the documented schema of ${status}: ${why[0]}`);
    }
  }
  if (status !== 101) {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) if (headers.get(name) !== value) problems.push(`header ${name}: ${headers.get(name)}`);
    if (!headers.get("content-security-policy")) problems.push("no content-security-policy");
    if (!headers.get("cache-control")) problems.push("no cache-control");
  }
  const errorish = status >= 400;
  const scanned = errorish || !(exp.route && ["GET /", "GET /dashboard.js", "GET /openapi.json"].includes(exp.route.key));
  if (scanned) {
    for (const leak of LEAKS) {
      const found = typeof leak === "string" ? (text.includes(leak) ? leak : null) : (leak.exec(text)?.[0] ?? null);
      if (found !== null && !requestText.includes(found)) problems.push(`leak: ${JSON.stringify(found)} in the body`);
    }
  }
  if (errorish && sent.method !== "HEAD") {
    if (!(headers.get("content-type") ?? "").includes("application/json")) problems.push(`error content-type ${headers.get("content-type")}`);
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      problems.push("error body is not JSON");
      return problems;
    }
    const e = body?.error;
    if (body === null || typeof body !== "object" || Object.keys(body).join() !== "error" || e === null || typeof e !== "object") {
      problems.push("error body is not {error: {...}}");
      return problems;
    }
    const extra = Object.keys(e).filter((k) => !["code", "message", "details"].includes(k));
    if (extra.length > 0) problems.push(`error has extra fields ${extra.join(",")}`);
    if (status < 500 && !(CODES[status] ?? []).includes(e.code)) problems.push(`code ${JSON.stringify(e.code)} does not go with ${status}`);
    if (typeof e.message !== "string" || e.message.length === 0) problems.push("error without message");
    if ("details" in e) {
      const d = e.details;
      const list = Array.isArray(d) && d.every((x) => x && typeof x.field === "string" && typeof x.message === "string");
      const facts = d !== null && typeof d === "object" && !Array.isArray(d) && Object.values(d).every((v) => v === null || ["string", "number", "boolean"].includes(typeof v));
      if (!list && !facts) problems.push(`details of an unknown shape: ${JSON.stringify(d).slice(0, 200)}`);
    }
    if (status === 400 && !(Array.isArray(e.details) && e.details.length > 0)) problems.push("400 without details [{field, message}]");
    if (status === 429 && !/^[0-9]+$/.test(headers.get("retry-after") ?? "")) problems.push("429 without Retry-After");
  }
  return problems;
}
