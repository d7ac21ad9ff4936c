// The edge build inside workerd: build/similarity.wasm imported the way the Worker imports it (wrangler hands
// over a compiled WebAssembly.Module; compiling from bytes is not allowed here), loaded through the typed loader,
// searched, checked against a plain JavaScript reference, filled to its memory cap, and freed.
import { describe, expect, it } from "vitest";
import wasm from "../../build/similarity.wasm";
import { SimilarityError, instantiateSimilarity } from "../../lib/wasm/similarity";

function vectors(count: number, dim: number, seed: number): Float32Array {
  return Float32Array.from({ length: count * dim }, (_, i) => Math.sin(seed + i * 0.7071) + Math.cos(i * 0.13));
}

/** Indices by score (higher first), equal scores by index: the reference for top-k. */
function reference(data: Float32Array, dim: number, query: Float32Array, k: number, cosine: boolean): number[] {
  const n = data.length / dim;
  const norm = (v: ArrayLike<number>, o: number) => Math.sqrt(Array.from({ length: dim }, (_, i) => v[o + i]! ** 2).reduce((a, b) => a + b, 0));
  const scores = Array.from({ length: n }, (_, r) => {
    let s = 0;
    for (let i = 0; i < dim; i++) s += data[r * dim + i]! * query[i]!;
    return cosine ? s / (norm(data, r * dim) * norm(query, 0)) : s;
  });
  return scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i);
}

describe("similarity.wasm in workerd", () => {
  it("is a compiled module with the documented exports", () => {
    expect(wasm).toBeInstanceOf(WebAssembly.Module);
    const names = WebAssembly.Module.exports(wasm).map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(["memory", "alloc", "free", "dot", "cosine", "normalize", "corpus_new", "corpus_add", "corpus_topk", "corpus_free"]));
  });

  it("dot, cosine, normalize on a dimension that is not a multiple of 4", () => {
    const sim = instantiateSimilarity(wasm);
    const a = Float32Array.from({ length: 387 }, (_, i) => (i % 7) - 3);
    const b = Float32Array.from({ length: 387 }, (_, i) => (i % 5) - 2);
    let dot = 0;
    for (let i = 0; i < 387; i++) dot += a[i]! * b[i]!;
    expect(sim.dot(a, b)).toBe(dot); // small integers: exact
    expect(sim.cosine(a, a)).toBeCloseTo(1, 6);
    const unit = sim.normalize(a);
    expect(sim.norm(unit)).toBeCloseTo(1, 6);
    expect(sim.stats()).toMatchObject({ usedBytes: 0, liveAllocations: 0 });
  });

  it("top-k over float32 and int8 corpora agrees with a JavaScript reference", () => {
    const sim = instantiateSimilarity(wasm);
    const dim = 385;
    const data = vectors(2000, dim, 1);
    const queries = vectors(4, dim, 2);
    const f32 = sim.createCorpus({ dim });
    const i8 = sim.createCorpus({ dim, kind: "int8" });
    f32.add(data);
    i8.add(data);
    for (const metric of ["dot", "cosine"] as const) {
      const batch = f32.topKBatch(queries, 10, { metric });
      const quantised = i8.topKBatch(queries, 10, { metric });
      for (let q = 0; q < 4; q++) {
        const query = queries.subarray(q * dim, (q + 1) * dim);
        const expected = reference(data, dim, query, 10, metric === "cosine");
        expect(Array.from(batch[q]!.indices)).toEqual(expected);
        expect(f32.topK(query, 10, { metric })).toEqual(batch[q]);
        // int8 finds most of the same neighbours (the recall goal is measured on clustered data in bench/)
        const overlap = Array.from(quantised[q]!.indices).filter((i) => expected.includes(i)).length;
        expect(overlap).toBeGreaterThanOrEqual(7);
      }
    }
    // rows padded to 16 bytes: 385 int8 -> 400 bytes, 385 float32 -> 1552 bytes
    expect(i8.scanBytes).toBe(2000 * 400);
    expect(f32.scanBytes).toBe(2000 * 1552);
    f32.free();
    i8.free();
    expect(sim.stats()).toMatchObject({ usedBytes: 0, liveBlocks: 0, liveAllocations: 0 });
  });

  it("refuses bad input with SimilarityError", () => {
    const sim = instantiateSimilarity(wasm);
    const corpus = sim.createCorpus({ dim: 4 });
    corpus.add(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    expect(() => sim.createCorpus({ dim: 0 })).toThrow(SimilarityError);
    expect(() => sim.createCorpus({ dim: 4097 })).toThrow(/dimension must be an integer from 1 to 4096/);
    expect(() => corpus.topK(Float32Array.of(1, 2, 3, 4), 3)).toThrow(/k must be from 1 to the number of vectors/);
    expect(() => corpus.add(Float32Array.of(1, 2, 3, NaN))).toThrow(/NaN or infinity/);
    expect(sim.raw.dot(0, 16, 4)).toBeNaN();
    expect(sim.raw.last_error()).toBe(3);
    corpus.free();
    expect(() => corpus.topK(Float32Array.of(1, 2, 3, 4), 1)).toThrow(/not a live corpus handle/);
  });

  it("holds about 43,000 float32 or 170,000 int8 vectors of 384 in its 64 MiB, then says out_of_memory", () => {
    const sim = instantiateSimilarity(wasm);
    const capacity: Record<string, number> = {};
    for (const kind of ["float32", "int8"] as const) {
      const corpus = sim.createCorpus({ dim: 384, kind });
      const one = vectors(1, 384, 3);
      const chunk = vectors(1000, 384, 3);
      let error: unknown = null;
      try {
        for (;;) corpus.add(chunk);
      } catch (err) {
        error = err;
      }
      // top up one vector at a time to the exact capacity
      try {
        for (;;) corpus.add(one);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(SimilarityError);
      expect((error as SimilarityError).code).toBe("out_of_memory");
      capacity[kind] = corpus.size;
      expect(corpus.topK(one, 1, { metric: "dot" }).scores[0]).toBeGreaterThan(0);
      corpus.free();
    }
    expect(sim.stats().memoryBytes).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(capacity.float32).toBeGreaterThan(42_000);
    expect(capacity.int8).toBeGreaterThan(165_000);
    console.log(`workerd capacity at dim 384: ${JSON.stringify(capacity)}`);
  });
});
