import { z } from "zod";
import { deleteIndex, deleteVector, embedQueryText, ensureIndex, listIndexes, queryIndex, testPartBytes, upsertVectors } from "../mesh/indexes.ts";
import type { Routes } from "../openapi/route.ts";
import { ErrorSchema } from "../schemas/common.ts";
import { CreateIndex, IndexesResponse, IndexParams, QueryIndex, QueryResponse, UpsertResponse, UpsertVectors, VectorIndex, VectorParams } from "../schemas/indexes.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });
const TAG = "Vector indexes";

/** Vector indexes of the caller's tenant (API.md, "Caches and vector indexes"): thin routes over src/mesh/indexes.ts. */
export function indexRoutes(routes: Routes): void {
  routes.add(
    {
      method: "get",
      path: "/v1/indexes",
      summary: "The tenant's vector indexes, with their settings and vector counts",
      tag: TAG,
      responses: { 200: { description: "the indexes", schema: IndexesResponse } },
    },
    async (c) => c.json({ indexes: await listIndexes(c.env, c.var.caller.tenant) }),
  );

  routes.add(
    {
      method: "put",
      path: "/v1/indexes/:index",
      summary: "Create a vector index (200 when it exists with the same settings)",
      tag: TAG,
      audit: "index.create",
      params: IndexParams,
      body: CreateIndex,
      responses: {
        201: { description: "created", schema: VectorIndex },
        200: { description: "it exists with these settings", schema: VectorIndex },
        409: err("it exists with other settings"),
      },
    },
    async (c, { params, body }) => {
      const { created, index } = await ensureIndex(c.env, c.var.caller.tenant, params.index, body, { partBytes: testPartBytes(c.env, c.req.raw) });
      return c.json(index, created ? 201 : 200);
    },
  );

  routes.add(
    {
      method: "delete",
      path: "/v1/indexes/:index",
      summary: "Delete a vector index and its vectors",
      tag: TAG,
      audit: "index.delete",
      params: IndexParams,
      responses: { 200: { description: "deleted", schema: z.object({ deleted: z.literal(true), index: z.string() }) }, 404: err("no such index") },
    },
    async (c, { params }) => {
      await deleteIndex(c.env, c.var.caller.tenant, params.index);
      return c.json({ deleted: true as const, index: params.index });
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/indexes/:index/vectors",
      summary: "Insert or replace up to 1000 vectors",
      tag: TAG,
      audit: "index.upsert",
      params: IndexParams,
      body: UpsertVectors,
      responses: {
        200: { description: "written", schema: UpsertResponse },
        400: err("a vector with the wrong number of values, a value that is not a finite number, metadata over 4 KiB (details name each: position and id)"),
        404: err("no such index"),
        409: err("the index is full, or a part of it is being split for longer than a write waits"),
      },
    },
    async (c, { params, body }) => {
      c.set("audit", { target: `${params.index} (${body.vectors.length} vectors)` });
      return c.json({ upserted: await upsertVectors(c.env, c.var.caller.tenant, params.index, body.vectors) });
    },
  );

  routes.add(
    {
      method: "delete",
      path: "/v1/indexes/:index/vectors/:id",
      summary: "Delete one vector",
      tag: TAG,
      audit: "index.vector.delete",
      params: VectorParams,
      responses: { 200: { description: "deleted", schema: z.object({ deleted: z.literal(true), id: z.string() }) }, 404: err("no such index or vector") },
    },
    async (c, { params }) => {
      await deleteVector(c.env, c.var.caller.tenant, params.index, params.id);
      return c.json({ deleted: true as const, id: params.id });
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/indexes/:index/query",
      summary: "The vectors most similar to a query vector, best first; a metadata filter applies before ranking",
      tag: TAG,
      params: IndexParams,
      body: QueryIndex,
      responses: {
        200: { description: "the matches", schema: QueryResponse },
        400: err("a query vector of the wrong length or with a value that is not a finite number; `text` for an index without a model"),
        404: err("no such index"),
        409: err("a part kept splitting while the query ran (rare); try again"),
      },
    },
    async (c, { params, body }) => {
      const tenant = c.var.caller.tenant;
      const vector = body.vector ?? (await embedQueryText(c.env, tenant, params.index, body.text ?? ""));
      return c.json({ matches: await queryIndex(c.env, tenant, params.index, vector, body.topK, body.filter ?? null) });
    },
  );
}
