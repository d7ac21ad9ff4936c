import type { Similarity } from "./similarity.ts";
import { CHUNK_BYTES, METRICS, SimilarityError, type Metric, type SearchOptions, type TopK, type VectorKind } from "./similarity-api.ts";

/** N vectors of one dimension in linear memory, float32 or int8 (one scale per vector: a quarter of the bytes). */
export class Corpus {
  readonly sim: Similarity;
  readonly handle: number;
  readonly dim: number;
  readonly kind: VectorKind;

  constructor(sim: Similarity, handle: number, dim: number, kind: VectorKind) {
    this.sim = sim;
    this.handle = handle;
    this.dim = dim;
    this.kind = kind;
  }

  /** Number of vectors. */
  get size(): number {
    return this.#check(this.sim.raw.corpus_size(this.handle));
  }

  /** Vectors it can hold before it allocates another segment. */
  get capacity(): number {
    return this.#check(this.sim.raw.corpus_capacity(this.handle));
  }

  /** Bytes it holds in linear memory. */
  get bytes(): number {
    return this.#check(this.sim.raw.corpus_bytes(this.handle));
  }

  /** Bytes of row data one scan reads. */
  get scanBytes(): number {
    return this.#check(this.sim.raw.corpus_scan_bytes(this.handle));
  }

  /** Makes room for `total` vectors, so that adding up to that many does not allocate. */
  reserve(total: number): void {
    if (!Number.isInteger(total) || total < 0 || total > 0x7fffffff) this.sim.fail("count");
    this.sim.call(() => this.#check(this.sim.raw.corpus_reserve(this.handle, total, 1)));
  }

  /**
   * Appends vectors (a Float32Array of n * dim, or an array of Float32Arrays of dim); answers the index of the
   * first. All or nothing: on any error the corpus keeps exactly the vectors it had.
   */
  add(vectors: Float32Array | readonly Float32Array[]): number {
    const flat = vectors instanceof Float32Array ? vectors : concat(vectors, this.dim);
    const count = this.sim.countOf(flat, this.dim);
    const before = this.size;
    if (before + count > 0x7fffffff) this.sim.fail("capacity");
    // Segments first, then the staging buffer: allocated last, freed first, it merges back into the free memory
    // after the segments. The other order leaves a hole between segments that the allocator (TLSF, which rounds a
    // request up to its next size class) would never hand out for a segment again.
    this.sim.call(() => this.#check(this.sim.raw.corpus_reserve(this.handle, before + count, 0)));
    try {
      this.sim.forEachChunk(flat, this.dim, (ptr, n) => {
        this.sim.call(() => this.#check(this.sim.raw.corpus_add(this.handle, ptr, n)));
      });
    } catch (err) {
      this.sim.raw.corpus_truncate(this.handle, before);
      throw err;
    }
    return before;
  }

  /** Forgets the vectors from `size` on (keeps the memory for new ones). */
  truncate(size: number): void {
    if (!Number.isInteger(size)) this.sim.fail("index");
    this.#check(this.sim.raw.corpus_truncate(this.handle, size));
  }

  /** Vector `index` as float32 (int8: dequantised, scale * q). */
  get(index: number): Float32Array {
    if (!Number.isInteger(index)) this.sim.fail("index");
    return this.sim.withBuffer(this.dim * 4, (out) => {
      this.#check(this.sim.raw.corpus_get(this.handle, index, out));
      return new Float32Array(this.sim.raw.memory.buffer, out, this.dim).slice();
    });
  }

  /** The score of `query` against every vector, in index order. */
  scores(query: Float32Array, { metric = "cosine" }: SearchOptions = {}): Float32Array {
    const m = this.#metric(metric);
    if (query.length !== this.dim) this.sim.fail("dimension");
    const n = this.size;
    return this.sim.withBuffer(this.dim * 4 + n * 4, (ptr) => {
      this.sim.writeF32(ptr, query);
      const out = ptr + this.dim * 4;
      this.#check(this.sim.raw.corpus_scores(this.handle, ptr, m, out));
      return new Float32Array(this.sim.raw.memory.buffer, out, n).slice();
    });
  }

  /** The k best vectors for `query`, best first; equal scores in index order. */
  topK(query: Float32Array, k: number, options: SearchOptions = {}): TopK {
    if (query.length !== this.dim) this.sim.fail("dimension");
    const [result] = this.topKBatch(query, k, options);
    if (result === undefined) this.sim.fail("count");
    return result;
  }

  /** Top-k of several queries (a Float32Array of nq * dim) in one pass over the corpus. */
  topKBatch(queries: Float32Array, k: number, { metric = "cosine" }: SearchOptions = {}): TopK[] {
    const m = this.#metric(metric);
    const nq = this.sim.countOf(queries, this.dim);
    if (!Number.isInteger(k) || k < 1 || k > this.sim.maxK) this.sim.fail("k");
    if (nq > this.sim.maxBatch) this.sim.fail("count");
    const qBytes = queries.byteLength;
    const rBytes = nq * k * 4;
    return this.sim.withBuffer(qBytes + 2 * rBytes, (ptr) => {
      this.sim.writeF32(ptr, queries);
      const outIndices = ptr + qBytes;
      const outScores = outIndices + rBytes;
      this.#check(this.sim.raw.corpus_topk(this.handle, ptr, nq, k, m, outIndices, outScores));
      const buffer = this.sim.raw.memory.buffer;
      const results: TopK[] = [];
      for (let q = 0; q < nq; q++) {
        results.push({
          indices: new Uint32Array(buffer, outIndices + q * k * 4, k).slice(),
          scores: new Float32Array(buffer, outScores + q * k * 4, k).slice(),
        });
      }
      return results;
    });
  }

  /** The bandwidth probe: a streaming SIMD sum over the bytes a scan reads (for benchmarks). */
  probe(): number {
    const sum = this.sim.raw.corpus_probe(this.handle);
    if (this.sim.raw.last_error() !== 0) this.sim.check(-1);
    return sum;
  }

  /** Frees the corpus and its memory; using it afterwards throws "handle". */
  free(): void {
    this.#check(this.sim.raw.corpus_free(this.handle));
  }

  #metric(metric: Metric): number {
    const m = METRICS[metric];
    if (m === undefined) this.sim.fail("metric");
    return m;
  }

  #check(result: number): number {
    return this.sim.check(result);
  }
}

function concat(vectors: readonly Float32Array[], dim: number): Float32Array {
  const flat = new Float32Array(vectors.length * dim);
  vectors.forEach((v, i) => {
    if (v.length !== dim) throw new SimilarityError("dimension", `vector ${i} has ${v.length} components, not ${dim}`);
    flat.set(v, i * dim);
  });
  return flat;
}
