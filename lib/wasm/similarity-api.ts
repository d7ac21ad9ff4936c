/**
 * The vocabulary of the similarity module's loader (lib/wasm/similarity.ts): the raw exports, error codes, options
 * and results. No imports, so Node scripts load it as it is.
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
export const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

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

export const KINDS: Record<VectorKind, number> = { float32: 0, int8: 1 };
export const METRICS: Record<Metric, number> = { dot: 0, cosine: 1 };
/** Vectors are copied into linear memory in chunks of about this size. */
export const CHUNK_BYTES = 1 << 20;
