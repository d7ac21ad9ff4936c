/**
 * Typed loader for build/similarity.wasm (AssemblyScript: assembly/similarity.ts): dot product, cosine,
 * normalisation and top-k search over float32 or int8 vectors held in the module's linear memory.
 *
 * Runtime-agnostic: it takes a compiled `WebAssembly.Module`. In the Worker, import the file (wrangler hands it
 * over compiled; compiling from bytes at run time is not allowed there):
 *
 * ```ts
 * import wasm from "../../build/similarity.wasm";
 * const sim = instantiateSimilarity(wasm);
 * const corpus = sim.createCorpus({ dim: 384, kind: "int8" });
 * corpus.add(embeddings);                       // Float32Array of n * 384
 * const { indices, scores } = corpus.topK(query, 10, { metric: "cosine" });
 * corpus.free();                                // memory is managed explicitly
 * ```
 *
 * In Node: `instantiateSimilarity(compileModule(readFileSync("build/similarity.wasm")))`.
 *
 * Memory is explicit: a corpus keeps its vectors in linear memory until `free()`; per call only the query crosses
 * the boundary (copied into a buffer that is freed before the call returns). The module's memory is capped
 * (maximumMemory, 64 MiB in the Worker build); when it is full, calls throw `SimilarityError` "out_of_memory"
 * and the instance stays usable. This file has no imports, so Node scripts can load it directly.
 */

// The few parts of the WebAssembly JavaScript API this loader uses, declared here: the Worker's types have them,
// Node's (@types/node) do not, and this file is type-checked in both projects.
/** A compiled `WebAssembly.Module`. */
export type WasmModule = object;
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { readonly exports: object };
  RuntimeError: new () => Error;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/**
 * Compiles module bytes: for Node (tests, benchmarks, agents). Not in the Worker, where compiling from bytes at run
 * time is forbidden: import the `.wasm` file there instead.
 */
export function compileModule(bytes: Uint8Array): WasmModule {
  return new wasmApi.Module(bytes);
}

/** The raw exports (see assembly/similarity.ts): pointers and handles are byte offsets into `memory`. */
export interface SimilarityExports {
  readonly memory: WasmMemory;
  last_error(): number;
  error_message(code: number): number;
  error_message_bytes(code: number): number;
  max_error_code(): number;
  max_dim(): number;
  max_k(): number;
  max_batch(): number;
  alloc(bytes: number): number;
  free(ptr: number): number;
  used_bytes(): number;
  live_blocks(): number;
  live_allocations(): number;
  allocating(): number;
  clear_allocating(): void;
  dot(a: number, b: number, dim: number): number;
  cosine(a: number, b: number, dim: number): number;
  norm(a: number, dim: number): number;
  normalize(a: number, dim: number, count: number): number;
  probe(ptr: number, bytes: number): number;
  corpus_new(kind: number, dim: number): number;
  corpus_free(handle: number): number;
  corpus_reserve(handle: number, rows: number, exact: number): number;
  corpus_add(handle: number, src: number, count: number): number;
  corpus_truncate(handle: number, size: number): number;
  corpus_size(handle: number): number;
  corpus_dim(handle: number): number;
  corpus_kind(handle: number): number;
  corpus_capacity(handle: number): number;
  corpus_bytes(handle: number): number;
  corpus_scan_bytes(handle: number): number;
  corpus_get(handle: number, index: number, out: number): number;
  corpus_probe(handle: number): number;
  corpus_scores(handle: number, query: number, metric: number, out: number): number;
  corpus_topk(handle: number, queries: number, nq: number, k: number, metric: number, outIndices: number, outScores: number): number;
}

/** Error codes, in the order of assembly/similarity/errors.ts (index = the module's numeric code). */
export const SIMILARITY_ERROR_CODES = [
  "ok",
  "dimension",
  "k",
  "pointer",
  "handle",
  "kind",
  "metric",
  "nonfinite",
  "size",
  "too_many_allocations",
  "count",
  "index",
  "out_of_memory",
  "capacity",
] as const;

export type SimilarityErrorCode = Exclude<(typeof SIMILARITY_ERROR_CODES)[number], "ok">;

/** A call the module refused (bad input, or memory full). The module's state is unchanged by it. */
export class SimilarityError extends Error {
  readonly code: SimilarityErrorCode;

  constructor(code: SimilarityErrorCode, message: string) {
    super(message);
    this.name = "SimilarityError";
    this.code = code;
  }
}

export type VectorKind = "float32" | "int8";
export type Metric = "dot" | "cosine";

export interface TopK {
  /** Vector indices, best first; equal scores in index order. */
  indices: Uint32Array;
  scores: Float32Array;
}

export interface SearchOptions {
  /** `cosine` (default) or `dot`. */
  metric?: Metric;
}

export interface SimilarityOptions {
  /**
   * Extra import modules, e.g. `{ rtrace: ... }` for the debug build (compiled with `--use ASC_RTRACE=1`), which
   * imports allocation and store hooks. `env.abort` is provided.
   */
  imports?: Record<string, Record<string, unknown>>;
}

export interface MemoryStats {
  /** Size of the linear memory (it only grows, up to maximumMemory). */
  memoryBytes: number;
  /** Bytes held by live buffers and corpora. */
  usedBytes: number;
  /** Blocks held: buffers, corpus headers, segment tables, segments. */
  liveBlocks: number;
  /** Buffers and corpora in the module's registry. */
  liveAllocations: number;
}

const KINDS: Record<VectorKind, number> = { float32: 0, int8: 1 };
const METRICS: Record<Metric, number> = { dot: 0, cosine: 1 };
/** Vectors are copied into linear memory in chunks of about this size. */
const CHUNK_BYTES = 1 << 20;

/** Instantiates the module (synchronously: the module is already compiled). */
export function instantiateSimilarity(module: WasmModule, options: SimilarityOptions = {}): Similarity {
  let memory: WasmMemory | null = null;
  const text = (ptr: number): string => {
    if (memory === null || ptr === 0) return "";
    const bytes = new Uint32Array(memory.buffer, ptr - 4, 1)[0] ?? 0;
    return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, bytes >>> 1));
  };
  const imports = {
    ...options.imports,
    env: {
      ...options.imports?.env,
      // Only reachable through an assertion of the debug build or a broken invariant: a bug, not an input error.
      abort(message: number, file: number, line: number, column: number): never {
        throw new Error(`similarity.wasm aborted: ${text(message)} at ${text(file)}:${line}:${column}`);
      },
    },
  };
  const instance = new wasmApi.Instance(module, imports);
  const raw = instance.exports as unknown as SimilarityExports;
  memory = raw.memory;
  return new Similarity(raw);
}

/** One instance of the module: its memory, its corpora, the vector functions. */
export class Similarity {
  readonly raw: SimilarityExports;
  readonly maxDim: number;
  readonly maxK: number;
  readonly maxBatch: number;
  readonly #messages: string[];

  constructor(raw: SimilarityExports) {
    this.raw = raw;
    if (raw.max_error_code() !== SIMILARITY_ERROR_CODES.length - 1) {
      throw new Error("similarity.wasm and src/wasm/similarity.ts disagree on the error codes; rebuild (npm run build:wasm)");
    }
    this.#messages = SIMILARITY_ERROR_CODES.map((_, code) => {
      const ptr = raw.error_message(code);
      return String.fromCharCode(...new Uint16Array(raw.memory.buffer, ptr, raw.error_message_bytes(code) >>> 1));
    });
    this.maxDim = raw.max_dim();
    this.maxK = raw.max_k();
    this.maxBatch = raw.max_batch();
  }

  /** Dot product (float32, SIMD). */
  dot(a: Float32Array, b: Float32Array): number {
    this.#sameLength(a, b);
    return this.#withVectors([a, b], ([pa, pb]) => this.#checkNaN(this.raw.dot(pa!, pb!, a.length)));
  }

  /** Cosine similarity (0 when either vector is zero). */
  cosine(a: Float32Array, b: Float32Array): number {
    this.#sameLength(a, b);
    return this.#withVectors([a, b], ([pa, pb]) => this.#checkNaN(this.raw.cosine(pa!, pb!, a.length)));
  }

  /** Euclidean norm (accumulated in float64). */
  norm(a: Float32Array): number {
    return this.#withVectors([a], ([pa]) => this.check(this.raw.norm(pa!, a.length)));
  }

  /**
   * Unit-length copies of `count` vectors of `dim` (default: one vector of `vectors.length`); zero vectors stay
   * zero.
   */
  normalize(vectors: Float32Array, dim: number = vectors.length): Float32Array {
    const count = this.#count(vectors, dim);
    return this.#withVectors([vectors], ([p]) => {
      this.check(this.raw.normalize(p!, dim, count));
      return this.#readF32(p!, vectors.length);
    });
  }

  /** An empty corpus of `dim` (1..4096) float32 or int8 vectors. Free it with `corpus.free()`. */
  createCorpus({ dim, kind = "float32" }: { dim: number; kind?: VectorKind }): Corpus {
    if (!Number.isInteger(dim)) this.fail("dimension");
    if (!(kind in KINDS)) this.fail("kind");
    const handle = this.call(() => this.raw.corpus_new(KINDS[kind], dim));
    if (handle === 0) this.#throw(this.raw.last_error());
    return new Corpus(this, handle, dim, kind);
  }

  stats(): MemoryStats {
    return {
      memoryBytes: this.raw.memory.buffer.byteLength,
      usedBytes: this.raw.used_bytes(),
      liveBlocks: this.raw.live_blocks(),
      liveAllocations: this.raw.live_allocations(),
    };
  }

  /** The module's message for a numeric code. */
  message(code: number): string {
    return this.#messages[code] ?? `unknown error code ${code}`;
  }

  /**
   * Runs a call into the module, turning an out-of-memory trap (memory.grow failed at maximumMemory) into a
   * SimilarityError. The allocator traps before it changes anything, so the instance stays consistent.
   */
  call<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof wasmApi.RuntimeError && this.raw.allocating() === 1) {
        this.raw.clear_allocating();
        this.fail("out_of_memory");
      }
      throw err;
    }
  }

  /** Allocates a buffer of `bytes` in linear memory (for the raw API); free it with `free`. */
  alloc(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 1 || bytes > 0xffffffff) this.fail("size");
    const ptr = this.call(() => this.raw.alloc(bytes));
    if (ptr === 0) this.#throw(this.raw.last_error());
    return ptr;
  }

  free(ptr: number): void {
    if (this.raw.free(ptr) < 0) this.#throw(this.raw.last_error());
  }

  /** Copies `data` into linear memory at `ptr` (a fresh view: memory may have grown since the last call). */
  writeF32(ptr: number, data: Float32Array): void {
    new Float32Array(this.raw.memory.buffer, ptr, data.length).set(data);
  }

  /** Allocates buffers holding copies of `vectors`, runs `fn` with their addresses, then frees them. */
  #withVectors<T>(vectors: Float32Array[], fn: (ptrs: number[]) => T): T {
    const ptrs: number[] = [];
    try {
      for (const v of vectors) {
        const ptr = this.alloc(Math.max(4, v.byteLength));
        ptrs.push(ptr);
        this.writeF32(ptr, v);
      }
      return this.call(() => fn(ptrs));
    } finally {
      for (const ptr of ptrs) this.raw.free(ptr);
    }
  }

  /** Allocates `bytes`, runs `fn` with the address, frees it. */
  withBuffer<T>(bytes: number, fn: (ptr: number) => T): T {
    const ptr = this.alloc(Math.max(4, bytes));
    try {
      return this.call(() => fn(ptr));
    } finally {
      this.raw.free(ptr);
    }
  }

  #readF32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.raw.memory.buffer, ptr, length).slice();
  }

  #sameLength(a: Float32Array, b: Float32Array): void {
    if (a.length !== b.length) this.fail("dimension");
  }

  /** Number of vectors of `dim` in `vectors`; throws unless it is a whole number of at least one. */
  #count(vectors: Float32Array, dim: number): number {
    if (!Number.isInteger(dim) || dim < 1 || dim > this.maxDim) this.fail("dimension");
    if (vectors.length % dim !== 0) this.fail("dimension");
    if (vectors.length === 0) this.fail("count");
    return vectors.length / dim;
  }

  /** Answers `result`, or throws the module's last error if it signals failure (< 0). */
  check(result: number): number {
    if (result < 0) this.#throw(this.raw.last_error());
    return result;
  }

  #checkNaN(result: number): number {
    if (Number.isNaN(result) && this.raw.last_error() !== 0) this.#throw(this.raw.last_error());
    return result;
  }

  /** Throws the SimilarityError `code`, with the module's message for it. */
  fail(code: SimilarityErrorCode): never {
    this.#throw(SIMILARITY_ERROR_CODES.indexOf(code));
  }

  /** Throws the error the module reported with a numeric code. */
  #throw(code: number): never {
    const name = SIMILARITY_ERROR_CODES[code];
    if (name === undefined || name === "ok") throw new Error(`similarity.wasm reported a failure with error code ${code}`);
    throw new SimilarityError(name, this.message(code));
  }

  /** Copies `n * dim` floats into linear memory in chunks of about 1 MiB, handing each chunk to `fn`. */
  forEachChunk(vectors: Float32Array, dim: number, fn: (ptr: number, count: number) => void): void {
    const count = this.#count(vectors, dim);
    const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / (dim * 4)));
    this.withBuffer(Math.min(count, perChunk) * dim * 4, (ptr) => {
      for (let first = 0; first < count; first += perChunk) {
        const n = Math.min(perChunk, count - first);
        this.writeF32(ptr, vectors.subarray(first * dim, (first + n) * dim));
        fn(ptr, n);
      }
    });
  }

  /** Number of vectors of `dim` in `vectors` (throws unless a whole number of at least one). */
  countOf(vectors: Float32Array, dim: number): number {
    return this.#count(vectors, dim);
  }
}

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
