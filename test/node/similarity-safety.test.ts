// The similarity module under bad input and memory pressure: every malformed call (dimension 0 or > 4096, k > n,
// pointers out of range, forged or freed handles, NaN) is refused with an error and leaves every byte of linear
// memory as it was; the debug build's rtrace sees every store land in a block the module owns; corpora allocated
// and freed over and over return memory use to its baseline; a full memory is an error, not a broken instance.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SimilarityError, type Similarity } from "../../lib/wasm/similarity.ts";
import { debugInstance, releaseInstance } from "./similarity-helpers.ts";

const CODES = { dimension: 1, k: 2, pointer: 3, handle: 4, kind: 5, metric: 6, nonfinite: 7, size: 8, count: 10, index: 11 } as const;

/** Runs a raw call that must fail with `code` and must not change a single byte of linear memory. */
function refused(sim: Similarity, code: keyof typeof CODES, call: () => number): void {
  const before = new Uint8Array(sim.raw.memory.buffer).slice();
  const result = call();
  expect(result === -1 || result === 0 || Number.isNaN(result), `result ${result}`).toBe(true);
  expect(sim.raw.last_error()).toBe(CODES[code]);
  const after = new Uint8Array(sim.raw.memory.buffer);
  expect(after.length).toBe(before.length);
  expect(Buffer.compare(before, after)).toBe(0);
}

function expectError(code: string, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SimilarityError);
    expect((err as SimilarityError).code).toBe(code);
    return;
  }
  throw new Error(`expected a SimilarityError "${code}"`);
}

describe.each([
  ["release", () => ({ sim: releaseInstance(), errors: () => [] as string[] })],
  ["debug", () => {
    const { sim, rtrace } = debugInstance();
    return { sim, errors: () => rtrace.errors };
  }],
])("malformed input (%s build)", (_name, make) => {
  it("is refused with an error code and leaves linear memory untouched", () => {
    const { sim, errors } = make();
    const raw = sim.raw;
    const dim = 5;
    const corpus = sim.createCorpus({ dim });
    corpus.add(Float32Array.from({ length: 3 * dim }, (_, i) => i - 7));
    const h = corpus.handle;
    const buf = sim.alloc(64); // 16 floats
    sim.writeF32(buf, Float32Array.from({ length: 16 }, (_, i) => i));
    const end = raw.memory.buffer.byteLength;

    // dimensions
    for (const d of [0, -1, 4097, 1 << 30]) {
      refused(sim, "dimension", () => raw.dot(buf, buf, d));
      refused(sim, "dimension", () => raw.cosine(buf, buf, d));
      refused(sim, "dimension", () => raw.corpus_new(0, d));
    }
    refused(sim, "kind", () => raw.corpus_new(2, 8));
    refused(sim, "kind", () => raw.corpus_new(-1, 8));
    // pointers: null, static data, past the end, inside a corpus, straddling the end of the buffer, unaligned past it
    for (const p of [0, 8, 1024, end - 16, end + 64, 0xfffffff0, h, h + 8]) refused(sim, "pointer", () => raw.dot(p, buf, 4));
    refused(sim, "pointer", () => raw.dot(buf, buf, 17));
    refused(sim, "pointer", () => raw.dot(buf + 4, buf, 16));
    refused(sim, "pointer", () => raw.normalize(buf + 60, 2, 1));
    refused(sim, "pointer", () => raw.probe(buf, 65));
    refused(sim, "pointer", () => raw.corpus_add(h, buf, 4)); // 4 x 5 floats > 16
    refused(sim, "pointer", () => raw.corpus_add(h, end - 8, 1));
    refused(sim, "pointer", () => raw.corpus_scores(h, buf, 0, buf + 60)); // 3 scores from byte 60 of 64
    refused(sim, "pointer", () => raw.corpus_topk(h, buf, 1, 3, 0, buf, buf + 56)); // 3 results from byte 56 of 64
    refused(sim, "pointer", () => raw.corpus_topk(h, buf, 1, 3, 0, buf + 56, buf));
    refused(sim, "pointer", () => raw.corpus_topk(h, buf, 4, 1, 0, buf, buf)); // 4 queries of 5 floats > 16
    refused(sim, "pointer", () => raw.corpus_get(h, 0, buf + 48));
    refused(sim, "pointer", () => raw.free(buf + 16));
    refused(sim, "pointer", () => raw.free(h));
    refused(sim, "pointer", () => raw.free(0));
    // handles: forged, a buffer, zero, past the end
    for (const bad of [0, buf, h + 4, 12345678, end + 16]) {
      refused(sim, "handle", () => raw.corpus_size(bad));
      refused(sim, "handle", () => raw.corpus_add(bad, buf, 1));
      refused(sim, "handle", () => raw.corpus_topk(bad, buf, 1, 1, 0, buf, buf));
      refused(sim, "handle", () => raw.corpus_free(bad));
    }
    // k, counts, metric, indices
    for (const k of [0, -1, 4, 4097]) refused(sim, "k", () => raw.corpus_topk(h, buf, 1, k, 0, buf, buf));
    for (const nq of [0, -1, 4097]) refused(sim, "count", () => raw.corpus_topk(h, buf, nq, 1, 0, buf, buf));
    refused(sim, "count", () => raw.corpus_add(h, buf, 0));
    refused(sim, "count", () => raw.normalize(buf, 4, 0));
    for (const m of [2, -1]) refused(sim, "metric", () => raw.corpus_topk(h, buf, 1, 1, m, buf, buf));
    refused(sim, "metric", () => raw.corpus_scores(h, buf, 7, buf));
    for (const i of [-1, 3, 1 << 30]) refused(sim, "index", () => raw.corpus_get(h, i, buf));
    refused(sim, "index", () => raw.corpus_truncate(h, 4));
    refused(sim, "size", () => raw.alloc(0));
    refused(sim, "size", () => raw.alloc(0x40000000));
    refused(sim, "size", () => raw.alloc(0xffffffff));
    // non-finite values, anywhere in the input
    for (const bad of [NaN, Infinity, -Infinity]) {
      const v = Float32Array.from({ length: 16 }, (_, i) => i);
      v[13] = bad;
      sim.writeF32(buf, v);
      refused(sim, "nonfinite", () => raw.corpus_add(h, buf, 3));
      refused(sim, "nonfinite", () => raw.corpus_topk(h, buf + 40, 1, 1, 1, buf, buf));
      refused(sim, "nonfinite", () => raw.normalize(buf, 16, 1));
    }
    expect(corpus.size).toBe(3);

    // The loader says the same in JavaScript terms.
    expectError("dimension", () => sim.dot(new Float32Array(3), new Float32Array(4)));
    expectError("dimension", () => sim.createCorpus({ dim: 0 }));
    expectError("dimension", () => sim.createCorpus({ dim: 4097 }));
    expectError("dimension", () => corpus.add(new Float32Array(7)));
    expectError("dimension", () => corpus.topK(new Float32Array(4), 1));
    expectError("k", () => corpus.topK(new Float32Array(dim), 4));
    expectError("k", () => corpus.topK(new Float32Array(dim), 0));
    expectError("k", () => corpus.topK(new Float32Array(dim), 1.5));
    expectError("metric", () => corpus.topK(new Float32Array(dim), 1, { metric: "l2" as "dot" }));
    expectError("nonfinite", () => corpus.add(Float32Array.of(1, 2, 3, 4, NaN)));
    expectError("index", () => corpus.get(3));
    // An add is all or nothing, also when the bad vector is in a later chunk of a large add.
    const many = new Float32Array(60_000 * dim).fill(1);
    many[many.length - 1] = NaN;
    expectError("nonfinite", () => corpus.add(many));
    expect(corpus.size).toBe(3);
    expect(Array.from(corpus.get(2))).toEqual([3, 4, 5, 6, 7]);

    sim.free(buf);
    corpus.free();
    expectError("handle", () => corpus.size);
    expectError("handle", () => corpus.topK(new Float32Array(dim), 1));
    expectError("handle", () => corpus.free());
    expect(sim.stats()).toMatchObject({ usedBytes: 0, liveBlocks: 0, liveAllocations: 0 });
    expect(errors()).toEqual([]);
  });

  it("random raw calls never trap and never write outside the module's own blocks", () => {
    const { sim, errors } = make();
    const raw = sim.raw;
    const corpus = sim.createCorpus({ dim: 8, kind: "int8" });
    corpus.add(Float32Array.from({ length: 80 }, (_, i) => Math.sin(i)));
    const buf = sim.alloc(256);
    const pointer = fc.oneof(fc.constantFrom(0, buf, buf + 128, buf + 250, corpus.handle), fc.integer({ min: -16, max: 0x7fffffff }));
    const small = fc.integer({ min: -2, max: 70 });
    fc.assert(
      fc.property(fc.nat(6), pointer, pointer, pointer, small, small, small, (op, p1, p2, p3, a, b, c) => {
        const h = op % 2 === 0 ? corpus.handle : p1;
        switch (op) {
          case 0: raw.corpus_topk(h, p2, a, b, c, p3, p1); break;
          case 1: raw.corpus_scores(h, p2, c, p3); break;
          case 2: raw.dot(p1, p2, a); break;
          case 3: raw.normalize(p1, a, b); break;
          case 4: raw.corpus_get(h, a, p2); break;
          case 5: raw.probe(p1, a); break;
          case 6: raw.corpus_add(h, p2, a); break;
        }
        expect(corpus.size).toBeGreaterThanOrEqual(10);
      }),
      { numRuns: 400 },
    );
    expect(errors()).toEqual([]);
    sim.free(buf);
    corpus.free();
    expect(sim.stats()).toMatchObject({ usedBytes: 0, liveBlocks: 0, liveAllocations: 0 });
  });
});

describe("memory (debug build with rtrace)", () => {
  it("allocating and freeing corpora over and over returns to the baseline and reuses memory", () => {
    const { sim, rtrace } = debugInstance();
    const baseline = sim.stats();
    expect(baseline).toMatchObject({ usedBytes: 0, liveBlocks: 0, liveAllocations: 0 });
    const pages: number[] = [];
    for (let cycle = 0; cycle < 12; cycle++) {
      const corpora = [
        sim.createCorpus({ dim: 384, kind: "float32" }),
        sim.createCorpus({ dim: 383, kind: "int8" }),
        sim.createCorpus({ dim: 4096, kind: "float32" }),
        sim.createCorpus({ dim: 1, kind: "int8" }),
      ];
      for (const c of corpora) {
        // Many small adds: segments of growing size and a segment table that is reallocated.
        const n = c.dim === 4096 ? 300 : 2000;
        for (let added = 0; added < n; added += 250) {
          c.add(Float32Array.from({ length: Math.min(250, n - added) * c.dim }, (_, i) => Math.sin(cycle + added + i)));
        }
        const q = Float32Array.from({ length: c.dim }, (_, i) => Math.cos(i));
        c.topK(q, 10);
        c.topKBatch(new Float32Array(3 * c.dim).fill(0.5), 5, { metric: "dot" });
        c.scores(q);
        c.get(c.size - 1);
        c.truncate(c.size >> 1);
      }
      sim.normalize(new Float32Array(1000).fill(3), 10);
      sim.dot(new Float32Array(77).fill(1), new Float32Array(77).fill(2));
      expect(sim.stats().liveBlocks).toBeGreaterThan(8);
      for (const c of corpora) c.free();
      expect(sim.stats()).toMatchObject({ usedBytes: 0, liveBlocks: 0, liveAllocations: 0 });
      expect(rtrace.blocks.size).toBe(0);
      pages.push(sim.stats().memoryBytes);
    }
    // Memory never shrinks (WebAssembly cannot), but after the first cycles it stops growing: freed blocks are reused.
    expect(pages.at(-1)).toBe(pages[2]);
    expect(rtrace.allocations).toBe(rtrace.frees);
    expect(rtrace.allocations).toBeGreaterThan(500);
    expect(rtrace.stores).toBeGreaterThan(10_000);
    expect(rtrace.errors).toEqual([]);
  });

  it("a full memory is an out_of_memory error; the instance keeps its corpora and works on", () => {
    for (const { sim, errors, blocks } of [
      { sim: releaseInstance(), errors: () => [] as string[], blocks: () => 0 },
      (() => {
        const { sim, rtrace } = debugInstance();
        return { sim, errors: () => rtrace.errors, blocks: () => rtrace.blocks.size };
      })(),
    ]) {
      const small = sim.createCorpus({ dim: 16 });
      small.add(Float32Array.from({ length: 16 * 50 }, (_, i) => Math.sin(i)));
      const q = Float32Array.from({ length: 16 }, (_, i) => i % 3);
      const before = small.topK(q, 5);
      const big = sim.createCorpus({ dim: 384, kind: "float32" });
      const chunk = new Float32Array(1000 * 384).fill(0.25);
      let error: unknown = null;
      try {
        for (;;) big.add(chunk);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(SimilarityError);
      expect((error as SimilarityError).code).toBe("out_of_memory");
      // 64 MiB of float32 rows of 384 (1,540 bytes each with the inverse norm): about 43,000, in whole adds of 1000.
      expect(big.size).toBeGreaterThanOrEqual(40_000);
      expect(big.size % 1000).toBe(0);
      // Near the 64 MiB cap: what is left is less than the next segment.
      expect(sim.stats().memoryBytes).toBeGreaterThan(62 * 1024 * 1024);
      expect(sim.stats().memoryBytes).toBeLessThanOrEqual(64 * 1024 * 1024);
      expect(small.topK(q, 5)).toEqual(before);
      const extra = sim.createCorpus({ dim: 8 });
      expectError("out_of_memory", () => extra.add(new Float32Array(8 * 200_000)));
      expect(extra.size).toBe(0);
      extra.free();
      // Freeing makes room again.
      big.free();
      const again = sim.createCorpus({ dim: 384, kind: "int8" });
      again.add(chunk);
      expect(again.topK(new Float32Array(384).fill(1), 3).indices).toEqual(Uint32Array.of(0, 1, 2));
      again.free();
      small.free();
      expect(sim.stats()).toMatchObject({ usedBytes: 0, liveBlocks: 0, liveAllocations: 0 });
      expect(errors()).toEqual([]);
      expect(blocks()).toBe(sim.stats().liveBlocks);
    }
  });
});
