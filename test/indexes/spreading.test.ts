import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { idHash, owns, registryName, type IndexRecord } from "../../contract/index-rpc";
import type { VectorIndex } from "../../durable-objects/vector-index";
import { api } from "../helpers";
import { createIndex, expectRanking, freshIndex, partStub, query, randomVectors, recordOf, upsert } from "./helpers";

/**
 * An index spread over several parts (docs/indexes.md, "Growing"): a part over its byte budget splits in two by
 * the next bit of the id hash, writes follow, queries fan out over every part and merge best first. Small budgets
 * come from the test hook `x-daa-test-part-bytes`, so a few hundred vectors make many parts.
 */

const SMALL = { "x-daa-test-part-bytes": "2000" };

/** Every part's stats, and a check that the parts partition the hash space and hold only their own vectors. */
async function partsOf(record: IndexRecord): Promise<{ prefix: number; depth: number; vectors: number; bytes: number; state: string }[]> {
  const coverage = record.parts.reduce((sum, p) => sum + 2 ** -p.depth, 0);
  expect(coverage).toBe(1);
  return Promise.all(
    record.parts.map(async (p) => {
      const stats = await runInDurableObject(partStub(record, p.prefix), (o: VectorIndex, state) => {
        const ids = state.storage.sql.exec<{ id: string; hash: number }>("SELECT id, hash FROM vectors").toArray();
        for (const { id, hash } of ids) {
          expect(hash).toBe(idHash(id));
          expect(owns(p.prefix, p.depth, hash), `${id} in part ${p.prefix}/${p.depth}`).toBe(true);
        }
        return (o as any).part.stats({ ...record, prefix: p.prefix });
      });
      expect(stats).toMatchObject({ prefix: p.prefix, depth: p.depth, state: "active" });
      return stats;
    }),
  );
}

describe("an index over several parts", () => {
  it("splits full parts, keeps every vector in the part its hash names, and answers queries merged over the parts", async () => {
    const index = freshIndex("spread");
    const dims = 8;
    await createIndex(index, { dimensions: dims }, { headers: SMALL });
    const data = randomVectors(500, dims, 31).map((values, i) => ({ id: `s${i}`, values, metadata: { i, odd: i % 2 === 1 } }));
    await upsert(index, data);
    const record = (await recordOf("default", index))!;
    expect(record.parts.length).toBeGreaterThanOrEqual(8);
    const parts = await partsOf(record);
    expect(parts.reduce((n, p) => n + p.vectors, 0)).toBe(500);
    for (const p of parts) expect(p.bytes).toBeLessThanOrEqual(2000);
    expect((await api("GET", "/v1/indexes")).body.indexes.find((i: any) => i.index === index).vectors).toBe(500);

    for (const probe of randomVectors(4, dims, 32)) {
      expectRanking(await query(index, { vector: probe, topK: 25 }), data, probe, 25);
      const odd = data.filter((d) => d.metadata.odd);
      expectRanking(await query(index, { vector: probe, topK: 25, filter: { odd: true } }), odd, probe, 25);
    }

    // Replacing and deleting across the parts.
    const moved = data.slice(0, 50).map((d, i) => ({ ...d, values: randomVectors(1, dims, 1000 + i)[0]! }));
    await upsert(index, moved);
    for (const d of data.slice(450)) expect((await api("DELETE", `/v1/indexes/${index}/vectors/${d.id}`)).status).toBe(200);
    const now = [...moved, ...data.slice(50, 450)];
    const after = await partsOf((await recordOf("default", index))!);
    expect(after.reduce((n, p) => n + p.vectors, 0)).toBe(450);
    const probe = randomVectors(1, dims, 33)[0]!;
    expectRanking(await query(index, { vector: probe, topK: 40 }), now, probe, 40);

    // Deleting the index empties every part.
    const last = (await recordOf("default", index))!;
    expect((await api("DELETE", `/v1/indexes/${index}`)).status).toBe(200);
    for (const p of last.parts) {
      const rows = await runInDurableObject(partStub(last, p.prefix), (_: VectorIndex, state) => state.storage.sql.exec("SELECT count(*) AS n FROM part").one().n);
      expect(rows).toBe(0);
    }
  });

  it("takes concurrent writes while its parts split, losing none", async () => {
    const index = freshIndex("spread");
    const dims = 6;
    await createIndex(index, { dimensions: dims, precision: "int8" }, { headers: SMALL });
    const data = randomVectors(600, dims, 41).map((values, i) => ({ id: `c${i}`, values, metadata: {} }));
    const batches = Array.from({ length: 6 }, (_, b) => data.slice(b * 100, (b + 1) * 100));
    const answers = await Promise.all(batches.map((vectors) => api("POST", `/v1/indexes/${index}/vectors`, { vectors })));
    for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBe(200);
    const parts = await partsOf((await recordOf("default", index))!);
    expect(parts.reduce((n, p) => n + p.vectors, 0)).toBe(600);
    const probe = randomVectors(1, dims, 42)[0]!;
    expectRanking(await query(index, { vector: probe, topK: 30 }), data, probe, 30);
  });

  it("resumes a split cut short from its alarm; writes of the moving ids are busy meanwhile, the others go on", async () => {
    const index = freshIndex("resume");
    const dims = 4;
    await createIndex(index, { dimensions: dims }, { headers: { "x-daa-test-part-bytes": "100000" } });
    const data = randomVectors(200, dims, 51).map((values, i) => ({ id: `r${i}`, values, metadata: {} }));
    await upsert(index, data);
    const record = (await recordOf("default", index))!;
    const stub = partStub(record, 0);
    const ref = { ...record, prefix: 0 };
    // The split's first step, as if the object had stopped right after it.
    await runInDurableObject(stub, async (o: VectorIndex, state) => {
      state.storage.transactionSync(() => (o as any).store.setState("copying", 1));
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    const moving = data.find((d) => (idHash(d.id) & 1) === 1)!;
    const staying = data.find((d) => (idHash(d.id) & 1) === 0)!;
    const vector = (d: typeof moving) => ({ id: d.id, hash: idHash(d.id), values: Float32Array.from(d.values), metadata: "{}" });
    expect((await stub.upsert(ref, [vector(moving)])) as unknown).toEqual({ ok: true, value: { status: "busy" } });
    expect(await stub.upsert(ref, [vector(staying)])).toEqual({ ok: true, value: { status: "done", value: 1, depth: 0 } });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const after = (await recordOf("default", index))!;
    expect(after.parts).toEqual([{ prefix: 0, depth: 1 }, { prefix: 1, depth: 1 }]);
    const parts = await partsOf(after);
    expect(parts.reduce((n, p) => n + p.vectors, 0)).toBe(200);
    expect(parts.every((p) => p.vectors > 50)).toBe(true);
    expect(await stub.upsert(ref, [vector(moving)])).toEqual({ ok: true, value: { status: "moved", depth: 1 } });
    await upsert(index, [moving]);
    const probe = randomVectors(1, dims, 52)[0]!;
    expectRanking(await query(index, { vector: probe, topK: 20 }), data, probe, 20);
  });

  it("notices a record it cached that went stale: a part split by another isolate, an index deleted and made again", async () => {
    const index = freshIndex("stale");
    const dims = 4;
    await createIndex(index, { dimensions: dims }, { headers: { "x-daa-test-part-bytes": "100000" } });
    const data = randomVectors(100, dims, 61).map((values, i) => ({ id: `t${i}`, values, metadata: {} }));
    await upsert(index, data);
    const probe = randomVectors(1, dims, 62)[0]!;
    expectRanking(await query(index, { vector: probe, topK: 100 }), data, probe, 100);
    // This isolate caches the record with one part; the part splits without it knowing.
    const record = (await recordOf("default", index))!;
    expect(await partStub(record, 0).split({ ...record, prefix: 0 }, 100_000)).toEqual({ ok: true, value: null });
    expect((await recordOf("default", index))!.parts).toHaveLength(2);
    expectRanking(await query(index, { vector: probe, topK: 100 }), data, probe, 100);
    // Deleted and made again behind its back: the old parts answer 404, the new index is read.
    const registry = env.VECTOR_INDEX.getByName(registryName("default"));
    expect((await registry.removeIndex(index, Date.now())).ok).toBe(true);
    expect((await registry.createIndex("default", index, { dimensions: dims, metric: "cosine", precision: "float32" }, 100_000, Date.now())).ok).toBe(true);
    const fresh = (await recordOf("default", index))!;
    await partStub(fresh, 0).initPart({ ...fresh, prefix: 0 }, 0, "active");
    expect(await query(index, { vector: probe, topK: 5 })).toEqual([]);
    await upsert(index, data.slice(0, 3));
    expect((await query(index, { vector: probe, topK: 5 })).map((m) => m.id).sort()).toEqual(["t0", "t1", "t2"]);
    // Deleted behind its back: 404.
    expect((await registry.removeIndex(index, Date.now())).ok).toBe(true);
    expect((await api("POST", `/v1/indexes/${index}/query`, { vector: probe, topK: 5 })).status).toBe(404);
    expect((await api("POST", `/v1/indexes/${index}/vectors`, { vectors: data.slice(0, 1) })).status).toBe(404);
  });

  it("property: top-k over any set of vectors, spread or not, is the float64 reference's", async () => {
    const vectorArb = (dims: number) => fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: dims, maxLength: dims });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 6 }).chain((dims) =>
          fc.record({
            dims: fc.constant(dims),
            vectors: fc.uniqueArray(fc.record({ id: fc.string({ minLength: 1, maxLength: 12 }), values: vectorArb(dims) }), { minLength: 1, maxLength: 120, selector: (v) => v.id }),
            query: vectorArb(dims),
            topK: fc.integer({ min: 1, max: 30 }),
            precision: fc.constantFrom("float32", "int8"),
            small: fc.boolean(),
          }),
        ),
        async ({ dims, vectors, query: probe, topK, precision, small }) => {
          const index = freshIndex("prop");
          await createIndex(index, { dimensions: dims, precision }, { headers: small ? { "x-daa-test-part-bytes": "600" } : {} });
          await upsert(index, vectors);
          const matches = await query(index, { vector: probe, topK });
          // int8 re-ranks 4 x topK (at least topK + 32) candidates of its scan: with so few vectors, all of them.
          expectRanking(matches, vectors, probe, topK);
        },
      ),
      { numRuns: 25, seed: 20_261_201 },
    );
  });
});

describe("capacity of one part", () => {
  it("holds 32 MiB of vectors (21,760 float32 vectors of 384 with empty metadata); the next one splits it in two", async () => {
    const { ensureIndex, queryIndex, upsertVectors } = await import("../../src/mesh/indexes");
    const index = freshIndex("cap");
    const dims = 384;
    const perVector = 384 * 4 + 4 + 2; // the float32 row, its inverse norm, "{}"
    const capacity = Math.floor((32 * 1024 * 1024) / perVector);
    expect(capacity).toBe(21_760);
    await ensureIndex(env, "default", index, { dimensions: dims, metric: "cosine", precision: "float32" });
    let seed = 7;
    const vectorsOf = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({ id: `k${from + i}`, values: Float32Array.from({ length: dims }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1) }));
    const filling = Date.now();
    for (let from = 0; from < capacity; from += 1000) await upsertVectors(env, "default", index, vectorsOf(from, Math.min(1000, capacity - from)));
    const fillMs = Date.now() - filling;
    const full = (await recordOf("default", index))!;
    expect(full.parts).toEqual([{ prefix: 0, depth: 0 }]);
    const probe = Array.from({ length: dims }, (_, i) => Math.sin(i));
    const loading = Date.now();
    await queryIndex(env, "default", index, probe, 10);
    const firstMs = Date.now() - loading;
    const started = Date.now();
    for (let q = 0; q < 10; q++) await queryIndex(env, "default", index, probe, 10);
    const queryMs = (Date.now() - started) / 10;
    const memory = await runInDurableObject(partStub(full, 0), (o: VectorIndex) => {
      const part = (o as any).part;
      return { stats: part.stats({ ...full, prefix: 0 }), corpusBytes: part.resident.corpus.bytes, wasmBytes: (o as any).sim.stats().memoryBytes };
    });
    expect(memory.stats).toMatchObject({ vectors: capacity, bytes: capacity * perVector });
    expect(memory.corpusBytes).toBeLessThan(32 * 1024 * 1024);
    const splitting = Date.now();
    await upsertVectors(env, "default", index, vectorsOf(capacity, 1));
    const splitMs = Date.now() - splitting;
    console.log(
      `one part at its limit: ${capacity} float32 vectors of ${dims}, corpus ${memory.corpusBytes} bytes, module memory ${memory.wasmBytes} bytes; ` +
        `filled in ${fillMs} ms; through the Worker's client the first query (which loads the part into memory) took ${firstMs} ms, ` +
        `the next ones ${queryMs.toFixed(1)} ms each (topK 10); the upsert that split it ${splitMs} ms`,
    );
    const split = (await recordOf("default", index))!;
    expect(split.parts).toEqual([{ prefix: 0, depth: 1 }, { prefix: 1, depth: 1 }]);
    const halves = await Promise.all(split.parts.map((p) => partStub(split, p.prefix).stats({ ...split, prefix: p.prefix })));
    const counts = halves.map((h) => (h.ok ? h.value.vectors : -1));
    expect(counts[0]! + counts[1]!).toBe(capacity + 1);
    expect(Math.min(...counts)).toBeGreaterThan(capacity * 0.45);
    expect(await queryIndex(env, "default", index, probe, 10)).toHaveLength(10);
  }, 120_000);
});
