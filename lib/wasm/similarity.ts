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
 * and the instance stays usable. Its files import each other
 * with `.ts` extensions only, so Node scripts can load them directly.
 */

import { SIMILARITY_ERROR_CODES, SimilarityError, KINDS, CHUNK_BYTES, type WasmModule, type WasmMemory, type SimilarityExports, type SimilarityErrorCode, type VectorKind, type SimilarityOptions, type MemoryStats, wasmApi } from "./similarity-api.ts";
import { Corpus } from "./similarity-corpus.ts";

export * from "./similarity-api.ts";
export { Corpus } from "./similarity-corpus.ts";

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
