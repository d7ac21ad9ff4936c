import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { VectorIndex } from "../../durable-objects/vector-index";
import { api, expectError } from "../helpers";
import { keysFor } from "../security/fixtures";
import { createIndex, expectRanking, freshIndex, partStub, query, randomVectors, recordOf, upsert } from "./helpers";

/**
 * Vector indexes through the HTTP API (API.md, "Caches and vector indexes"): creating, listing and deleting
 * indexes, upserts and deletes of vectors, queries ranked against a float64 reference for both precisions, bad
 * input refused whole, tenants kept apart, and the in-memory copy rebuilt from SQLite after the object restarts.
 */

const items = (vectors: number[][], prefix = "v") => vectors.map((values, i) => ({ id: `${prefix}${i}`, values, metadata: { i } }));

describe("creating and listing indexes", () => {
  it("answers 201, then 200 for the same settings, 409 for others; lists the tenant's indexes with vector counts", async () => {
    const index = freshIndex();
    expect(await createIndex(index, { dimensions: 8, metric: "cosine", precision: "int8" })).toEqual({ index, dimensions: 8, metric: "cosine", precision: "int8", model: null, vectors: 0 });
    const again = await api("PUT", `/v1/indexes/${index}`, { dimensions: 8, precision: "int8" });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ index, dimensions: 8, precision: "int8" });
    expectError(await api("PUT", `/v1/indexes/${index}`, { dimensions: 9, precision: "int8" }), 409, "conflict");
    expectError(await api("PUT", `/v1/indexes/${index}`, { dimensions: 8, precision: "float32" }), 409, "conflict");
    await upsert(index, items(randomVectors(5, 8, 1)));
    const list = await api("GET", "/v1/indexes");
    expect(list.status).toBe(200);
    expect(list.body.indexes).toContainEqual({ index, dimensions: 8, metric: "cosine", precision: "int8", model: null, vectors: 5 });
    // The defaults: cosine, float32.
    const other = freshIndex();
    expect(await createIndex(other, { dimensions: 3 })).toMatchObject({ metric: "cosine", precision: "float32" });
  });

  it("refuses bad settings and bad names", async () => {
    for (const body of [{ dimensions: 0 }, { dimensions: 4097 }, { dimensions: 1.5 }, { dimensions: 4, metric: "dot" }, { dimensions: 4, precision: "int4" }, {}]) {
      expectError(await api("PUT", `/v1/indexes/${freshIndex()}`, body), 400, "invalid_request");
    }
    expectError(await api("PUT", "/v1/indexes/-bad", { dimensions: 4 }), 404, "not_found");
    expectError(await api("POST", `/v1/indexes/${freshIndex()}/query`, { vector: [1], topK: 1 }), 404, "not_found");
  });

  it("deletes an index and its vectors; a re-created index starts empty", async () => {
    const index = freshIndex();
    await createIndex(index, { dimensions: 4 });
    await upsert(index, items(randomVectors(10, 4, 2)));
    const before = (await recordOf("default", index))!;
    const deleted = await api("DELETE", `/v1/indexes/${index}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ deleted: true, index });
    expectError(await api("DELETE", `/v1/indexes/${index}`), 404, "not_found");
    expectError(await api("POST", `/v1/indexes/${index}/query`, { vector: [1, 0, 0, 0], topK: 3 }), 404, "not_found");
    expect((await api("GET", "/v1/indexes")).body.indexes.map((i: any) => i.index)).not.toContain(index);
    // The old part is empty: its storage was deleted.
    const rows = await runInDurableObject(partStub(before, 0), (_: VectorIndex, state) => state.storage.sql.exec("SELECT count(*) AS n FROM vectors").one().n);
    expect(rows).toBe(0);
    await createIndex(index, { dimensions: 4 });
    expect(await query(index, { vector: [1, 0, 0, 0], topK: 3 })).toEqual([]);
  });
});

describe("vectors and queries", () => {
  for (const precision of ["float32", "int8"] as const) {
    it(`${precision}: ranks by cosine like a float64 reference`, async () => {
      const index = freshIndex();
      const dims = 37;
      await createIndex(index, { dimensions: dims, precision });
      const data = items(randomVectors(600, dims, 7));
      await upsert(index, data);
      for (const [q, values] of randomVectors(5, dims, 8).entries()) {
        const matches = await query(index, { vector: values, topK: 10 });
        expectRanking(matches, data, values, 10);
        expect(matches[0]!.metadata).toEqual({ i: Number(matches[0]!.id.slice(1)) });
        if (q === 0) expect(matches).toHaveLength(10);
      }
      // Asking for more than there are answers all of them.
      expect(await query(index, { vector: data[0]!.values, topK: 100 })).toHaveLength(100);
      const small = freshIndex();
      await createIndex(small, { dimensions: dims, precision });
      await upsert(small, data.slice(0, 3));
      expect((await query(small, { vector: data[0]!.values, topK: 100 })).map((m) => m.id).sort()).toEqual(["v0", "v1", "v2"]);
    });
  }

  it("int8 with its float32 re-rank finds the same top results as float32 on a seeded random set", async () => {
    const dims = 96;
    const data = items(randomVectors(2000, dims, 11));
    const [f32, i8] = [freshIndex("f32"), freshIndex("i8")];
    await createIndex(f32, { dimensions: dims, precision: "float32" });
    await createIndex(i8, { dimensions: dims, precision: "int8" });
    await Promise.all([upsert(f32, data), upsert(i8, data)]);
    for (const values of randomVectors(20, dims, 12)) {
      const [a, b] = await Promise.all([query(f32, { vector: values, topK: 10 }), query(i8, { vector: values, topK: 10 })]);
      expect(b.map((m) => m.id)).toEqual(a.map((m) => m.id));
      b.forEach((m, i) => expect(m.score).toBeCloseTo(a[i]!.score, 6));
    }
  });

  it("replaces a vector by id, and deletes one (404 for one that is not there)", async () => {
    const index = freshIndex();
    await createIndex(index, { dimensions: 3 });
    await upsert(index, [
      { id: "x", values: [1, 0, 0], metadata: { v: 1 } },
      { id: "y", values: [0, 1, 0] },
    ]);
    expect((await query(index, { vector: [1, 0, 0], topK: 1 }))[0]).toEqual({ id: "x", score: 1, metadata: { v: 1 } });
    await upsert(index, [{ id: "x", values: [0, 0, 1], metadata: { v: 2 } }]);
    const after = await query(index, { vector: [0, 0, 1], topK: 5 });
    expect(after.map((m) => [m.id, m.score])).toEqual([["x", 1], ["y", 0]]);
    expect(after[0]!.metadata).toEqual({ v: 2 });
    const gone = await api("DELETE", `/v1/indexes/${index}/vectors/x`);
    expect(gone.status).toBe(200);
    expect(gone.body).toEqual({ deleted: true, id: "x" });
    expectError(await api("DELETE", `/v1/indexes/${index}/vectors/x`), 404, "not_found");
    expect((await query(index, { vector: [0, 0, 1], topK: 5 })).map((m) => m.id)).toEqual(["y"]);
    expect((await api("GET", "/v1/indexes")).body.indexes.find((i: any) => i.index === index).vectors).toBe(1);
    // An id with characters a path must escape.
    await upsert(index, [{ id: "a/b c?", values: [1, 1, 0] }]);
    expect((await api("DELETE", `/v1/indexes/${index}/vectors/${encodeURIComponent("a/b c?")}`)).status).toBe(200);
  });

  it("rebuilds its in-memory copy from SQLite after the object restarts", async () => {
    const index = freshIndex();
    const dims = 16;
    await createIndex(index, { dimensions: dims, precision: "int8" });
    const data = items(randomVectors(300, dims, 21));
    await upsert(index, data);
    await api("DELETE", `/v1/indexes/${index}/vectors/v0`);
    const probe = randomVectors(1, dims, 22)[0]!;
    const before = await query(index, { vector: probe, topK: 7 });
    const record = (await recordOf("default", index))!;
    const stub = partStub(record, 0);
    expect(await runInDurableObject(stub, (o: VectorIndex) => (o as any).part.resident?.live)).toBe(299);
    await evictDurableObject(stub);
    expect(await runInDurableObject(stub, (o: VectorIndex) => (o as any).part.resident)).toBeNull();
    const after = await query(index, { vector: probe, topK: 7 });
    expect(after).toEqual(before);
    expectRanking(after, data.slice(1), probe, 7);
    expect(await runInDurableObject(stub, (o: VectorIndex) => (o as any).part.resident?.live)).toBe(299);
  });
});

describe("bad input", () => {
  it("refuses a batch with a bad vector whole, naming each bad vector by position and id", async () => {
    const index = freshIndex();
    await createIndex(index, { dimensions: 3 });
    const good = { id: "good", values: [1, 2, 3] };
    const cases: [unknown, string, RegExp][] = [
      [{ id: "short", values: [1, 2] }, "vectors.1.values", /vector 1 \("short"\) has 2 values; the index has 3 dimensions/],
      [{ id: "long", values: [1, 2, 3, 4] }, "vectors.1.values", /vector 1 \("long"\) has 4 values/],
      [{ id: "str", values: [1, "2", 3] }, "vectors.1.values", /vector 1 \("str"\) has a value that is not a finite number at position 1/],
      [{ id: "nul", values: [1, null, 3] }, "vectors.1.values", /vector 1 \("nul"\) has a value that is not a finite number/],
      [{ id: "big", values: [1, 1e39, 3] }, "vectors.1.values", /vector 1 \("big"\) has a value beyond the float32 range/],
      [{ id: "meta", values: [1, 2, 3], metadata: { text: "x".repeat(4100) } }, "vectors.1.metadata", /vector 1 \("meta"\) has 4111 bytes of metadata/],
      [{ id: "", values: [1, 2, 3] }, "vectors.1.id", /./],
      [{ id: "x".repeat(129), values: [1, 2, 3] }, "vectors.1.id", /./],
    ];
    for (const [bad, field, message] of cases) {
      const res = await api("POST", `/v1/indexes/${index}/vectors`, { vectors: [good, bad] });
      expectError(res, 400, "invalid_request");
      expect(res.body.error.details, JSON.stringify(res.body)).toContainEqual({ field, message: expect.stringMatching(message) });
    }
    // Infinity reaches the Worker as 1e999 in JSON.
    const inf = await api("POST", `/v1/indexes/${index}/vectors`, `{"vectors":[{"id":"good","values":[1,2,3]},{"id":"inf","values":[1,1e999,3]}]}`);
    expectError(inf, 400, "invalid_request");
    expect(inf.body.error.details[0]).toEqual({ field: "vectors.1.values", message: 'vector 1 ("inf") has a value that is not a finite number at position 1' });
    // Two bad vectors: both named.
    const two = await api("POST", `/v1/indexes/${index}/vectors`, { vectors: [{ id: "a", values: [1] }, good, { id: "b", values: [1, 2] }] });
    expect(two.body.error.details.map((d: any) => d.field)).toEqual(["vectors.0.values", "vectors.2.values"]);
    // Too many vectors, none at all, unknown fields.
    const many = Array.from({ length: 1001 }, (_, i) => ({ id: `m${i}`, values: [1, 2, 3] }));
    const tooMany = await api("POST", `/v1/indexes/${index}/vectors`, { vectors: many });
    expectError(tooMany, 400, "invalid_request");
    expect(tooMany.body.error.details[0].field).toBe("vectors");
    expectError(await api("POST", `/v1/indexes/${index}/vectors`, { vectors: [] }), 400, "invalid_request");
    expectError(await api("POST", `/v1/indexes/${index}/vectors`, { vectors: [{ ...good, extra: 1 }] }), 400, "invalid_request");
    // Nothing was written by any of them.
    expect((await api("GET", "/v1/indexes")).body.indexes.find((i: any) => i.index === index).vectors).toBe(0);
    expect(await query(index, { vector: [1, 2, 3], topK: 5 })).toEqual([]);
  });

  it("refuses bad queries: topK out of range, a vector of the wrong length, both or neither of vector and text, text without a model", async () => {
    const index = freshIndex();
    await createIndex(index, { dimensions: 3 });
    for (const body of [{ vector: [1, 2, 3], topK: 0 }, { vector: [1, 2, 3], topK: 101 }, { vector: [1, 2, 3], topK: 1.5 }, { vector: [1, 2, 3] }, { topK: 1 }, { vector: [1, 2, 3], text: "x", topK: 1 }]) {
      expectError(await api("POST", `/v1/indexes/${index}/query`, body), 400, "invalid_request");
    }
    const short = await api("POST", `/v1/indexes/${index}/query`, { vector: [1, 2], topK: 1 });
    expectError(short, 400, "invalid_request");
    expect(short.body.error.details[0]).toEqual({ field: "vector", message: "the query vector has 2 values; the index has 3 dimensions" });
    expectError(await api("POST", `/v1/indexes/${index}/query`, { vector: [1, "x", 3], topK: 1 }), 400, "invalid_request");
    const text = await api("POST", `/v1/indexes/${index}/query`, { text: "hello", topK: 1 });
    expectError(text, 400, "invalid_request");
    expect(text.body.error.details[0].field).toBe("text");
    for (const filter of [{ a: { $regex: "x" } }, { a: {} }, { $and: [] }, { a: { b: 1 } }, { a: [1] }, { a: { $in: "x" } }, { a: { $gt: true } }]) {
      expectError(await api("POST", `/v1/indexes/${index}/query`, { vector: [1, 2, 3], topK: 1, filter }), 400, "invalid_request");
    }
  });
});

describe("tenants", () => {
  it("keeps each tenant's indexes to itself: another tenant's index is 404 and not listed", async () => {
    const [a, b] = await Promise.all([keysFor("ix-tenant-a", "ix-pool"), keysFor("ix-tenant-b", "ix-pool")]);
    const index = freshIndex("shared-name");
    await createIndex(index, { dimensions: 2 }, { token: a.operator });
    await upsert(index, [{ id: "secret", values: [1, 0], metadata: { owner: "a" } }], a.client);
    expect((await query(index, { vector: [1, 0], topK: 1 }, a.client)).map((m) => m.id)).toEqual(["secret"]);
    expectError(await api("POST", `/v1/indexes/${index}/query`, { vector: [1, 0], topK: 1 }, { token: b.client }), 404, "not_found");
    expectError(await api("POST", `/v1/indexes/${index}/vectors`, { vectors: [{ id: "x", values: [1, 0] }] }, { token: b.admin }), 404, "not_found");
    expectError(await api("DELETE", `/v1/indexes/${index}/vectors/secret`, undefined, { token: b.admin }), 404, "not_found");
    expectError(await api("DELETE", `/v1/indexes/${index}`, undefined, { token: b.admin }), 404, "not_found");
    expect((await api("GET", "/v1/indexes", undefined, { token: b.client })).body.indexes).toEqual([]);
    expect((await api("GET", "/v1/indexes", undefined, { token: a.client })).body.indexes.map((i: any) => i.index)).toEqual([index]);
    // The same name in tenant b is another index.
    await createIndex(index, { dimensions: 3 }, { token: b.admin });
    expect(await query(index, { vector: [1, 0, 0], topK: 1 }, b.client)).toEqual([]);
    expect((await query(index, { vector: [1, 0], topK: 1 }, a.client)).map((m) => m.id)).toEqual(["secret"]);
    // Roles: a client may not create or delete indexes, an auditor or agent may not read them.
    expectError(await api("PUT", `/v1/indexes/${freshIndex()}`, { dimensions: 2 }, { token: a.client }), 403, "forbidden");
    expectError(await api("DELETE", `/v1/indexes/${index}`, undefined, { token: a.client }), 403, "forbidden");
    expectError(await api("GET", "/v1/indexes", undefined, { token: a.auditor }), 403, "forbidden");
    expectError(await api("POST", `/v1/indexes/${index}/query`, { vector: [1, 0], topK: 1 }, { token: a.agent }), 403, "forbidden");
  });
});
