// The similarity module against references: float32 dot / cosine / norm / normalisation against float64,
// top-k against a full sort of the module's own scores (ties by index), batches against single queries, the int8
// corpus against float64 arithmetic on its quantised vectors, and int8 recall against float32 on clustered data.
// Every property runs against the release build (what the Worker loads) and, with fewer runs, the debug build.
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { ClusteredData, recallAtK } from "../../bench/similarity-data.ts";
import type { Metric, Similarity, VectorKind } from "../../lib/wasm/similarity.ts";
import { debugInstance, dot64, dotErrorBound, fullSort, norm64, quantize64, releaseInstance } from "./similarity-helpers.ts";

const debug = debugInstance();
const BUILDS: [string, Similarity, number][] = [
  ["release", releaseInstance(), 1],
  ["debug", debug.sim, 4],
];

afterAll(() => {
  expect(debug.rtrace.errors).toEqual([]);
});

/** Dimensions 1..4096, often small and often not a multiple of 4 (the scalar tail). */
const dimension = fc.oneof(fc.integer({ min: 1, max: 37 }), fc.integer({ min: 1, max: 4096 }), fc.constantFrom(1, 3, 4, 5, 15, 16, 17, 383, 384, 385, 4095, 4096));

/** Float32 values of any magnitude from subnormal to 1e6, both signs, and zeros. */
const component = fc.oneof(
  fc.float({ min: -1e6, max: 1e6, noNaN: true }),
  fc.float({ min: -1, max: 1, noNaN: true }),
  fc.constant(0),
);

const vectorPair = dimension.chain((dim) => fc.tuple(fc.float32Array({ minLength: dim, maxLength: dim, noNaN: true, min: -1e6, max: 1e6 }), fc.array(component, { minLength: dim, maxLength: dim }).map((a) => Float32Array.from(a))));

describe.each(BUILDS)("float32 vector functions against float64 (%s build)", (_name, sim, slower) => {
  const runs = (n: number) => ({ numRuns: Math.max(10, Math.floor(n / slower)) });

  it("dot: relative error under 1e-5, or within the float32 rounding bound near zero", () => {
    fc.assert(
      fc.property(vectorPair, ([a, b]) => {
        const got = sim.dot(a, b);
        const { dot, absSum } = dot64(a, b);
        expect(Math.abs(got - dot)).toBeLessThanOrEqual(Math.max(1e-5 * Math.abs(dot), dotErrorBound(a.length, absSum)));
      }),
      runs(300),
    );
  });

  it("dot of non-negative vectors (no cancellation): relative error under 1e-5 at every dimension", () => {
    const positive = dimension.chain((dim) => fc.tuple(...[0, 1].map(() => fc.float32Array({ minLength: dim, maxLength: dim, min: Math.fround(1e-3), max: 1e3, noNaN: true }))));
    fc.assert(
      fc.property(positive, ([a, b]) => {
        const { dot } = dot64(a!, b!);
        expect(Math.abs(sim.dot(a!, b!) - dot) / dot).toBeLessThan(1e-5);
      }),
      runs(200),
    );
  });

  it("cosine: relative error under 1e-5, or within the rounding bound near zero; 0 for a zero vector", () => {
    fc.assert(
      fc.property(vectorPair, ([a, b]) => {
        const got = sim.cosine(a, b);
        const na = norm64(a);
        const nb = norm64(b);
        if (na === 0 || nb === 0) {
          expect(got).toBe(0);
          return;
        }
        const { dot, absSum } = dot64(a, b);
        const ref = dot / (na * nb);
        // Plus the final rounding to float32, which is absolute for results in the subnormal range.
        const bound = dotErrorBound(a.length, absSum) / (na * nb) + 4 * 2 ** -24 * Math.abs(ref) + 2 ** -149;
        expect(Math.abs(got - ref)).toBeLessThanOrEqual(Math.max(1e-5 * Math.abs(ref), bound));
        expect(Math.abs(got)).toBeLessThanOrEqual(1);
      }),
      runs(300),
    );
  });

  it("norm is accumulated in float64: relative error under 1e-12, no overflow at 1e30", () => {
    fc.assert(
      fc.property(vectorPair, ([a]) => {
        const ref = norm64(a);
        expect(Math.abs(sim.norm(a) - ref)).toBeLessThanOrEqual(1e-12 * ref);
      }),
      runs(200),
    );
    expect(sim.norm(Float32Array.from([1e30, 1e30]))).toBeCloseTo(Math.SQRT2 * Math.fround(1e30), -18);
  });

  it("normalize: each component within 2 float32 roundings of x_i / |x|, zero vectors stay zero, batches per vector", () => {
    fc.assert(
      fc.property(dimension, fc.integer({ min: 1, max: 4 }), fc.nat(), (dim, count, seed) => {
        const v = new Float32Array(dim * count);
        for (let i = 0; i < v.length; i++) v[i] = Math.sin(seed + i * 7.31) * 10 ** ((i % 7) - 3);
        if (count > 1) v.fill(0, 0, dim); // the first vector is zero
        const got = sim.normalize(v, dim);
        let worst = 0; // error / allowed error, over all components
        for (let j = 0; j < count; j++) {
          const x = v.subarray(j * dim, (j + 1) * dim);
          const n = norm64(x);
          for (let i = 0; i < dim; i++) {
            const ref = n === 0 ? 0 : x[i]! / n;
            worst = Math.max(worst, Math.abs(got[j * dim + i]! - ref) / (2.5 * 2 ** -24 * Math.abs(ref) + 1e-45));
          }
        }
        expect(worst).toBeLessThanOrEqual(1);
      }),
      runs(150),
    );
  });
});

/** Corpora of small integer vectors: exact scores and many ties. */
const smallIntCorpus = fc
  .record({
    dim: fc.oneof(fc.integer({ min: 1, max: 21 }), fc.constantFrom(64, 100, 384)),
    n: fc.integer({ min: 1, max: 300 }),
    nq: fc.integer({ min: 1, max: 5 }),
    values: fc.integer({ min: 1, max: 3 }),
    kind: fc.constantFrom<VectorKind>("float32", "int8"),
    metric: fc.constantFrom<Metric>("dot", "cosine"),
    seed: fc.nat(),
  })
  .chain((p) => fc.record({ p: fc.constant(p), k: fc.integer({ min: 1, max: p.n }) }));

function intVectors(count: number, dim: number, range: number, seed: number): Float32Array {
  const out = new Float32Array(count * dim);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s % (2 * range + 1)) - range;
  }
  return out;
}

describe.each(BUILDS)("top-k (%s build)", (_name, sim, slower) => {
  const runs = (n: number) => ({ numRuns: Math.max(10, Math.floor(n / slower)) });

  it("equals the full sort of the corpus's scores, ties broken by index; batches equal single queries", () => {
    fc.assert(
      fc.property(smallIntCorpus, ({ p, k }) => {
        const corpus = sim.createCorpus({ dim: p.dim, kind: p.kind });
        try {
          const data = intVectors(p.n, p.dim, p.values, p.seed);
          // Added in two pieces, so that rows cross segment boundaries.
          const cut = Math.floor(p.n / 3) * p.dim;
          if (cut > 0) corpus.add(data.subarray(0, cut));
          corpus.add(data.subarray(cut));
          const queries = intVectors(p.nq, p.dim, p.values, p.seed + 1);
          const batch = corpus.topKBatch(queries, k, { metric: p.metric });
          for (let q = 0; q < p.nq; q++) {
            const query = queries.subarray(q * p.dim, (q + 1) * p.dim);
            const scores = corpus.scores(query, { metric: p.metric });
            if (p.kind === "float32" && p.metric === "dot") {
              // Small integers: float32 is exact, so the scores are the float64 dot products.
              for (let i = 0; i < p.n; i++) expect(scores[i]).toBe(dot64(query, data.subarray(i * p.dim, (i + 1) * p.dim)).dot);
            }
            const expected = fullSort(scores).slice(0, k);
            const single = corpus.topK(query, k, { metric: p.metric });
            expect(Array.from(single.indices)).toEqual(expected);
            expect(Array.from(single.scores)).toEqual(expected.map((i) => scores[i]));
            expect(batch[q]).toEqual(single);
          }
        } finally {
          corpus.free();
        }
      }),
      runs(250),
    );
  });

  it("on random float data too (few ties), with the corpus grown one vector at a time", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 120 }), fc.nat(), fc.constantFrom<VectorKind>("float32", "int8"), (dim, n, seed, kind) => {
        const corpus = sim.createCorpus({ dim, kind });
        try {
          const data = Float32Array.from({ length: n * dim }, (_, i) => Math.sin(seed * 0.37 + i * 1.7));
          for (let i = 0; i < n; i++) corpus.add(data.subarray(i * dim, (i + 1) * dim));
          expect(corpus.size).toBe(n);
          const query = Float32Array.from({ length: dim }, (_, i) => Math.cos(seed + i));
          for (const metric of ["dot", "cosine"] as const) {
            const k = 1 + (seed % n);
            const scores = corpus.scores(query, { metric });
            expect(Array.from(corpus.topK(query, k, { metric }).indices)).toEqual(fullSort(scores).slice(0, k));
          }
        } finally {
          corpus.free();
        }
      }),
      runs(100),
    );
  });

  it("float32 corpus scores agree with float64 (dot and cosine), and get() returns the stored vectors", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 40 }), fc.nat(), (dim, n, seed) => {
        const corpus = sim.createCorpus({ dim });
        try {
          const data = Float32Array.from({ length: n * dim }, (_, i) => Math.sin(seed + i * 0.91) * 100);
          corpus.add(data);
          const query = Float32Array.from({ length: dim }, (_, i) => Math.cos(seed * 3 + i));
          const dots = corpus.scores(query, { metric: "dot" });
          const cosines = corpus.scores(query, { metric: "cosine" });
          for (let i = 0; i < n; i++) {
            const row = data.subarray(i * dim, (i + 1) * dim);
            const { dot, absSum } = dot64(query, row);
            expect(Math.abs(dots[i]! - dot)).toBeLessThanOrEqual(Math.max(1e-5 * Math.abs(dot), dotErrorBound(dim, absSum)));
            const nn = norm64(query) * norm64(row);
            if (nn === 0) {
              expect(cosines[i]).toBe(0);
              continue;
            }
            const bound = dotErrorBound(dim, absSum) / nn + 4 * 2 ** -24;
            expect(Math.abs(cosines[i]! - dot / nn)).toBeLessThanOrEqual(Math.max(1e-5 * Math.abs(dot / nn), bound));
          }
          expect(corpus.get(n - 1)).toEqual(data.subarray((n - 1) * dim));
        } finally {
          corpus.free();
        }
      }),
      runs(100),
    );
  });

  it("int8 corpus: vectors are quantised per vector, and scores are float64 arithmetic on them (relative error < 1e-5)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 20 }), fc.nat(), (dim, n, seed) => {
        const corpus = sim.createCorpus({ dim, kind: "int8" });
        try {
          const data = Float32Array.from({ length: n * dim }, (_, i) => Math.sin(seed + i * 1.3) * 10 ** ((seed % 5) - 2));
          if (n > 1) data.fill(0, 0, dim); // a zero vector
          corpus.add(data);
          const query = Float32Array.from({ length: dim }, (_, i) => Math.cos(seed + i * 0.7));
          const qq = quantize64(query);
          const dots = corpus.scores(query, { metric: "dot" });
          const cosines = corpus.scores(query, { metric: "cosine" });
          for (let i = 0; i < n; i++) {
            const row = quantize64(data.subarray(i * dim, (i + 1) * dim));
            expect(corpus.get(i)).toEqual(Float32Array.from(row.q, (q) => q * row.scale));
            const integer = dot64(qq.q, row.q).dot;
            const dot = integer * qq.scale * row.scale;
            const nn = norm64(qq.q) * norm64(row.q);
            const cos = nn === 0 ? 0 : integer / nn;
            expect(Math.abs(dots[i]! - dot)).toBeLessThanOrEqual(1e-5 * Math.abs(dot));
            expect(Math.abs(cosines[i]! - cos)).toBeLessThanOrEqual(1e-5 * Math.abs(cos));
          }
        } finally {
          corpus.free();
        }
      }),
      runs(100),
    );
  });
});

describe("int8 against float32", () => {
  it("recall@10 >= 0.95 on clustered data (20,000 x 384, 200 clusters, 50 queries, cosine and dot)", () => {
    const sim = BUILDS[0]![1];
    const gen = new ClusteredData({ dim: 384, clusters: 200, seed: 11 });
    const data = gen.vectors(20_000);
    const queries = gen.vectors(50);
    const f32 = sim.createCorpus({ dim: 384, kind: "float32" });
    const i8 = sim.createCorpus({ dim: 384, kind: "int8" });
    try {
      f32.add(data);
      i8.add(data);
      expect(i8.scanBytes * 4).toBe(f32.scanBytes);
      expect(i8.bytes).toBeLessThan(f32.bytes / 3.5);
      for (const metric of ["cosine", "dot"] as const) {
        const truth = f32.topKBatch(queries, 10, { metric }).map((r) => r.indices);
        const found = i8.topKBatch(queries, 10, { metric }).map((r) => r.indices);
        expect(recallAtK(found, truth)).toBeGreaterThanOrEqual(0.95);
      }
    } finally {
      f32.free();
      i8.free();
    }
  });
});
