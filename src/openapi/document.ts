import { z } from "zod";
import { ErrorSchema } from "../schemas/common";
import type { AnySpec } from "./route";

type Json = Record<string, unknown>;

const REF_PREFIX = "#/components/schemas/";

/** A schema as JSON Schema 2020-12 (what OpenAPI 3.1 uses), its named parts moved into `components`. */
function schemaOf(schema: z.ZodType, io: "input" | "output", components: Json): Json {
  const json = z.toJSONSchema(schema, { io, unrepresentable: "any", target: "draft-2020-12" }) as Json;
  const defs = (json.$defs ?? {}) as Record<string, Json>;
  delete json.$defs;
  delete json.$schema;
  const rename = new Map<string, string>();
  for (const [id, def] of Object.entries(defs)) {
    // The same named schema can differ between request (defaults optional) and response (all present).
    const name = components[id] === undefined || JSON.stringify(components[id]) === JSON.stringify(def) ? id : `${id}${io === "input" ? "Input" : "Output"}`;
    rename.set(id, name);
    delete def.$schema;
    components[name] = def;
  }
  const fix = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(fix);
    if (node && typeof node === "object") {
      const out: Json = {};
      for (const [k, v] of Object.entries(node)) {
        out[k] = k === "$ref" && typeof v === "string" && v.startsWith("#/$defs/") ? REF_PREFIX + (rename.get(v.slice(8)) ?? v.slice(8)) : fix(v);
      }
      return out;
    }
    return node;
  };
  for (const name of rename.values()) components[name] = fix(components[name]);
  return fix(json) as Json;
}

function parametersOf(schema: z.ZodType | undefined, where: "path" | "query", components: Json): Json[] {
  if (!schema) return [];
  const json = schemaOf(schema, "input", components);
  const properties = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, prop]) => ({
    name,
    in: where,
    required: where === "path" || required.has(name),
    schema: prop,
    ...(typeof prop.description === "string" ? { description: prop.description } : {}),
  }));
}

/** The OpenAPI 3.1 document of the declared routes. */
export function openApiDocument(specs: readonly AnySpec[], info: { title: string; version: string; description: string }): Json {
  const components: Json = {};
  schemaOf(ErrorSchema, "output", components);
  const paths: Record<string, Json> = {};
  for (const spec of specs) {
    const path = spec.path.replace(/:(\w+)/g, "{$1}");
    const responses: Json = {};
    for (const [status, res] of Object.entries(spec.responses)) {
      responses[status] = res.schema
        ? { description: res.description, content: { [res.contentType ?? "application/json"]: { schema: schemaOf(res.schema, "output", components) } } }
        : res.contentType
          ? { description: res.description, content: { [res.contentType]: { schema: { type: "string" } } } }
          : { description: res.description };
    }
    if (!spec.public) {
      const error = (description: string) => ({ description, content: { "application/json": { schema: { $ref: `${REF_PREFIX}Error` } } } });
      responses["401"] ??= error("no or bad credential");
      responses["403"] ??= error("the credential's roles do not allow this route");
      responses["429"] ??= error("rate limited; see the Retry-After header");
    }
    const operation: Json = {
      summary: spec.summary,
      tags: [spec.tag],
      operationId: `${spec.method}${spec.path.replace(/\/:?(\w)/g, (_, ch: string) => ch.toUpperCase()).replace(/[^A-Za-z0-9]/g, "")}`,
      parameters: [...parametersOf(spec.params, "path", components), ...parametersOf(spec.query, "query", components)],
      responses,
      security: spec.public ? [] : [{ bearer: [] }],
    };
    if (spec.body) {
      operation.requestBody = { required: true, content: { "application/json": { schema: schemaOf(spec.body, "input", components) } } };
    }
    paths[path] = { ...(paths[path] ?? {}), [spec.method]: operation };
  }
  return {
    openapi: "3.1.0",
    info,
    paths,
    components: { schemas: components, securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
  };
}
