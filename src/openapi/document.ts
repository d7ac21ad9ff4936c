import { z } from "zod";
import { ConflictErrorSchema, ErrorSchema, RateLimitErrorSchema, ValidationErrorSchema } from "../schemas/common.ts";
import type { AnySpec } from "./route.ts";
import { errorResponsesOf, ERROR_RESPONSES, RESPONSE_HEADERS } from "./responses.ts";

type Json = Record<string, unknown>;

const REF_PREFIX = "#/components/schemas/";

/**
 * A request schema as generators should read it: a field with a default is optional for the client, so the
 * `default` goes into the description instead (generators with default settings make a field with a `default`
 * required, which is right for answers and wrong for requests).
 */
function withoutDefaults(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutDefaults);
  if (!node || typeof node !== "object") return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    // The keys of `properties` are field names (a field may be called "default"), each a schema.
    if (k === "properties" && v && typeof v === "object") out[k] = Object.fromEntries(Object.entries(v).map(([name, field]) => [name, withoutDefaults(field)]));
    else if (k !== "default") out[k] = withoutDefaults(v);
  }
  if ("default" in node) {
    const said = `Default: ${JSON.stringify((node as Json).default)}.`;
    out.description = typeof out.description === "string" ? `${out.description}. ${said}` : said;
  }
  return out;
}

/**
 * A path parameter as gateways should read it: an id that does not parse is a 404, so no pattern may refuse it
 * first (a validating proxy would answer 422). The pattern stays readable as `x-pattern`: what does not match it
 * answers 404.
 */
function withoutPattern(schema: Json): Json {
  const { pattern, ...rest } = schema;
  return pattern === undefined ? rest : { ...rest, "x-pattern": pattern };
}

/**
 * The components of the document, filled as operations are added: each named zod schema (`.meta({id})`) once, as
 * JSON Schema 2020-12 (what OpenAPI 3.1 uses). A named schema that reads differently as a request (defaults
 * optional) than as an answer gets an `Input` twin; one that reads the same is kept once.
 */
class Components {
  readonly schemas: Json = {};
  /** Each stored name's definition with its references unrenamed: what "the same schema" is compared by. */
  private readonly canonical = new Map<string, string>();

  schema(schema: z.ZodType, io: "input" | "output"): Json {
    const json = z.toJSONSchema(schema, { io, unrepresentable: "any", target: "draft-2020-12" }) as Json;
    const defs = (json.$defs ?? {}) as Record<string, Json>;
    delete json.$defs;
    delete json.$schema;
    const shape = (node: unknown, name: (id: string) => string): Json => {
      const fix = (n: unknown): unknown => {
        if (Array.isArray(n)) return n.map(fix);
        if (!n || typeof n !== "object") return n;
        const out: Json = {};
        for (const [k, v] of Object.entries(n)) {
          if (k === "$schema") continue;
          out[k] = k === "$ref" && typeof v === "string" && v.startsWith("#/$defs/") ? REF_PREFIX + name(v.slice(8)) : fix(v);
        }
        return out;
      };
      return (io === "input" ? withoutDefaults(fix(node)) : fix(node)) as Json;
    };
    const rename = new Map<string, string>();
    for (const [id, def] of Object.entries(defs)) {
      const canonical = JSON.stringify(shape(def, (ref) => ref));
      const known = this.canonical.get(id);
      const name = known === undefined || known === canonical ? id : `${id}${io === "input" ? "Input" : "Output"}`;
      rename.set(id, name);
      this.canonical.set(name, canonical);
    }
    const nameOf = (id: string) => rename.get(id) ?? id;
    for (const [id, def] of Object.entries(defs)) this.schemas[nameOf(id)] = shape(def, nameOf);
    return shape(json, nameOf);
  }
}

function parametersOf(schema: z.ZodType | undefined, where: "path" | "query", components: Components): Json[] {
  if (!schema) return [];
  const json = components.schema(schema, "input");
  const properties = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, prop]) => ({
    name,
    in: where,
    required: where === "path" || required.has(name),
    schema: where === "path" ? withoutPattern(prop) : prop,
    ...(typeof prop.description === "string" ? { description: prop.description } : {}),
  }));
}

/** `getV1TasksId` for `GET /v1/tasks/:id`; the dashboard at `/` is `getRoot`. */
function operationIdOf(spec: AnySpec): string {
  const path = spec.path === "/" ? "/root" : spec.path;
  return `${spec.method}${path.replace(/\/:?(\w)/g, (_, ch: string) => ch.toUpperCase()).replace(/[^A-Za-z0-9]/g, "")}`;
}

export interface ApiInfo {
  title: string;
  version: string;
  description: string;
  license: { name: string; identifier: string };
}

/** The OpenAPI 3.1 document of the declared routes, served from `serverUrl`. */
export function openApiDocument(specs: readonly AnySpec[], info: ApiInfo, serverUrl: string): Json {
  const components = new Components();
  for (const schema of [ErrorSchema, ValidationErrorSchema, ConflictErrorSchema, RateLimitErrorSchema]) components.schema(schema, "output");
  const paths: Record<string, Json> = {};
  for (const spec of specs) {
    const path = spec.path.replace(/:(\w+)/g, "{$1}");
    const responses: Json = {};
    for (const [status, res] of Object.entries(spec.responses)) {
      if (res.schema === ErrorSchema) continue;
      const headers = res.headers ? { headers: Object.fromEntries(Object.entries(res.headers).map(([name, ref]) => [name, { $ref: `#/components/headers/${ref}` }])) } : {};
      responses[status] = res.schema
        ? { description: res.description, ...headers, content: { [res.contentType ?? "application/json"]: { schema: components.schema(res.schema, "output") } } }
        : res.contentType
          ? { description: res.description, content: { [res.contentType]: { schema: { type: "string" } } } }
          : { description: res.description };
    }
    Object.assign(responses, errorResponsesOf(spec));
    const operation: Json = {
      summary: spec.summary,
      tags: [spec.tag],
      operationId: operationIdOf(spec),
      parameters: [...parametersOf(spec.params, "path", components), ...parametersOf(spec.query, "query", components)],
      responses,
      security: spec.public ? [] : [{ bearer: [] }],
    };
    if (spec.body) operation.requestBody = { required: true, content: { "application/json": { schema: components.schema(spec.body, "input") } } };
    paths[path] = { ...(paths[path] ?? {}), [spec.method]: operation };
  }
  return {
    openapi: "3.1.0",
    info,
    servers: [{ url: serverUrl, description: "the mesh that served this document" }],
    paths,
    components: {
      schemas: components.schemas,
      responses: ERROR_RESPONSES,
      headers: RESPONSE_HEADERS,
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "DAA_ADMIN_KEY, an API key, or a token from POST /v1/auth/token" } },
    },
  };
}
