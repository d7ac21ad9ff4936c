// Similarity search over float32 and int8 vectors in linear memory: the exports of build/similarity.wasm.
// Typed loader: src/wasm/similarity.ts. Format and limits: README.md, "WebAssembly: similarity".
//
// Raw pointer API. JavaScript allocates buffers with `alloc`, writes vectors into them and passes their
// addresses; a corpus lives in linear memory behind a handle and only queries cross the boundary per call.
// Every export validates what it is given (dimensions, counts, k, metric, that each pointer range lies inside a
// live buffer, that each handle is a live corpus, that vectors are finite) and on failure returns 0 / -1 / NaN and
// sets `last_error()`: it never traps on bad input and never touches memory it was not given.
import * as E from "./similarity/errors";
import { KIND_F32, KIND_I8, MAX_BATCH, MAX_DIM, MAX_K, METRIC_COSINE, METRIC_DOT } from "./similarity/limits";
import {
  REG_BUFFER, REG_CORPUS, allocate, allocating as allocatingFlag, inBuffer, isCorpus, liveBlocks, register,
  registeredCount, registryFull, release, unregister, usedBytes, validAllocationSize,
} from "./similarity/memory";
import { allFinite, dotF32, inverseNorm, scaleF32, streamSum, sumSquaresF64 } from "./similarity/kernels";
import {
  Corpus, canGrowBy, corpusAppend, corpusBytes, corpusCapacity, corpusCreate, corpusDestroy, corpusProbe,
  corpusRead, corpusReserve, corpusScan, corpusScanBytes, corpusScores, heapDrain, prepareQueries, queryBytes,
} from "./similarity/corpus";

let lastError: i32 = E.OK;

function fail(code: i32): i32 {
  lastError = code;
  return -1;
}

function failPointer(code: i32): usize {
  lastError = code;
  return 0;
}

function failNaN(code: i32): f32 {
  lastError = code;
  return NaN;
}

function validDim(dim: i32): bool {
  return dim >= 1 && dim <= MAX_DIM;
}

function floats(count: i32, dim: i32): u64 {
  return <u64>count * <u64>dim * 4;
}

// ---- errors and limits -----------------------------------------------------------------------------------------

/** The error of the last call (0: none). */
export function last_error(): i32 {
  return lastError;
}

/** Address of the UTF-16 message of an error code (static data); its length in bytes: `error_message_bytes`. */
export function error_message(code: i32): usize {
  return changetype<usize>(E.messageOf(code));
}

export function error_message_bytes(code: i32): i32 {
  return E.messageOf(code).length << 1;
}

/** The highest error code (the loader checks that it knows them all). */
export function max_error_code(): i32 {
  return E.LAST_CODE;
}

export function max_dim(): i32 {
  return MAX_DIM;
}

export function max_k(): i32 {
  return MAX_K;
}

export function max_batch(): i32 {
  return MAX_BATCH;
}

// ---- memory ------------------------------------------------------------------------------------------------------

/** Allocates a buffer of `bytes` (16-byte aligned, not zeroed) for JavaScript to fill; 0 on failure. */
export function alloc(bytes: u32): usize {
  lastError = E.OK;
  if (!validAllocationSize(<u64>bytes)) return failPointer(E.E_SIZE);
  if (registryFull()) return failPointer(E.E_TOO_MANY_ALLOCATIONS);
  let ptr = allocate(bytes);
  register(ptr, bytes, REG_BUFFER);
  return ptr;
}

/** Frees a buffer from `alloc`; -1 if `ptr` is not one. */
export function free(ptr: usize): i32 {
  lastError = E.OK;
  let bytes = unregister(ptr, REG_BUFFER);
  if (bytes < 0) return fail(E.E_POINTER);
  release(ptr, <usize>bytes);
  return 0;
}

/** Bytes held by all live buffers and corpora (payload, without the allocator's headers). */
export function used_bytes(): f64 {
  return <f64>usedBytes;
}

/** Blocks held (buffers, corpus headers, segment tables, segments). */
export function live_blocks(): i32 {
  return liveBlocks;
}

/** Buffers plus corpora in the registry. */
export function live_allocations(): i32 {
  return registeredCount();
}

/** 1 while the allocator runs: still 1 after a trap means the trap was memory.grow failing (out of memory). */
export function allocating(): i32 {
  return allocatingFlag;
}

/** Called by the loader after it has reported an out-of-memory trap. */
export function clear_allocating(): void {
  allocatingFlag = 0;
}

// ---- vectors -----------------------------------------------------------------------------------------------------

/** Dot product of two float32 vectors; NaN and `last_error()` on bad input. */
export function dot(a: usize, b: usize, dim: i32): f32 {
  lastError = E.OK;
  if (!validDim(dim)) return failNaN(E.E_DIMENSION);
  if (!inBuffer(a, floats(1, dim)) || !inBuffer(b, floats(1, dim))) return failNaN(E.E_POINTER);
  return dotF32(a, b, dim);
}

/** Cosine similarity of two float32 vectors, in [-1, 1] (0 if either is zero); NaN and `last_error()` on bad input. */
export function cosine(a: usize, b: usize, dim: i32): f32 {
  lastError = E.OK;
  if (!validDim(dim)) return failNaN(E.E_DIMENSION);
  if (!inBuffer(a, floats(1, dim)) || !inBuffer(b, floats(1, dim))) return failNaN(E.E_POINTER);
  // The norms in float64: the product of two float32 inverse norms could overflow for tiny vectors.
  let nn = Math.sqrt(sumSquaresF64(a, dim)) * Math.sqrt(sumSquaresF64(b, dim));
  // Clamped: float32 rounding (or underflow, for subnormal vectors) can push the quotient just past +-1.
  return nn > 0 ? <f32>min(1.0, max(-1.0, <f64>dotF32(a, b, dim) / nn)) : 0;
}

/** Euclidean norm (accumulated in float64); -1 and `last_error()` on bad input. */
export function norm(a: usize, dim: i32): f64 {
  lastError = E.OK;
  if (!validDim(dim)) return <f64>fail(E.E_DIMENSION);
  if (!inBuffer(a, floats(1, dim))) return <f64>fail(E.E_POINTER);
  return Math.sqrt(sumSquaresF64(a, dim));
}

/** Normalises `count` float32 vectors in place to unit length (zero vectors stay zero); 0 or -1. */
export function normalize(a: usize, dim: i32, count: i32): i32 {
  lastError = E.OK;
  if (!validDim(dim)) return fail(E.E_DIMENSION);
  if (count < 1) return fail(E.E_COUNT);
  if (!inBuffer(a, floats(count, dim))) return fail(E.E_POINTER);
  if (!allFinite(a, count * dim)) return fail(E.E_NONFINITE);
  for (let j = 0; j < count; j++) {
    let v = a + <usize>j * (<usize>dim << 2);
    scaleF32(v, dim, inverseNorm(v, dim));
  }
  return 0;
}

/** The bandwidth probe over a buffer: a streaming SIMD sum of its bytes. */
export function probe(ptr: usize, bytes: u32): i32 {
  lastError = E.OK;
  if (!inBuffer(ptr, <u64>bytes)) return fail(E.E_POINTER);
  return streamSum(ptr, bytes);
}

// ---- corpora -----------------------------------------------------------------------------------------------------

function corpusOf(handle: usize): Corpus | null {
  if (!isCorpus(handle)) {
    lastError = E.E_HANDLE;
    return null;
  }
  return changetype<Corpus>(handle);
}

/** Creates an empty corpus of `kind` (0: float32, 1: int8) and dimension `dim`; its handle, or 0. */
export function corpus_new(kind: i32, dim: i32): usize {
  lastError = E.OK;
  if (kind != KIND_F32 && kind != KIND_I8) return failPointer(E.E_KIND);
  if (!validDim(dim)) return failPointer(E.E_DIMENSION);
  if (registryFull()) return failPointer(E.E_TOO_MANY_ALLOCATIONS);
  let c = corpusCreate(kind, dim);
  register(changetype<usize>(c), offsetof<Corpus>(), REG_CORPUS);
  return changetype<usize>(c);
}

/** Frees a corpus and everything it holds; 0 or -1. */
export function corpus_free(handle: usize): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  if (c == null) return -1;
  unregister(handle, REG_CORPUS);
  corpusDestroy(c);
  return 0;
}

/**
 * Makes room for `rows` vectors in all, so that adding up to that many does not allocate; 0 or -1. `exact` 1:
 * allocate just that; 0: grow as an add would (at least double the capacity, up to ~1 MiB segments).
 */
export function corpus_reserve(handle: usize, rows: i32, exact: i32): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  if (c == null) return -1;
  if (rows < 0) return fail(E.E_COUNT);
  corpusReserve(c, <u64>rows, exact != 0);
  return 0;
}

/**
 * Appends `count` float32 vectors (`dim` each, contiguous at `src`); answers the index of the first, or -1. All or
 * nothing: the vectors are checked (finite) before any is added.
 */
export function corpus_add(handle: usize, src: usize, count: i32): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  if (c == null) return -1;
  if (count < 1) return fail(E.E_COUNT);
  if (!inBuffer(src, floats(count, c.dim))) return fail(E.E_POINTER);
  if (!allFinite(src, count * c.dim)) return fail(E.E_NONFINITE);
  if (!canGrowBy(c, count)) return fail(E.E_CAPACITY);
  let first = c.size;
  corpusAppend(c, src, count);
  return first;
}

/** Forgets the vectors from index `size` on (capacity is kept); 0 or -1. */
export function corpus_truncate(handle: usize, size: i32): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  if (c == null) return -1;
  if (size < 0 || size > c.size) return fail(E.E_INDEX);
  c.size = size;
  return 0;
}

export function corpus_size(handle: usize): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  return c == null ? -1 : c.size;
}

export function corpus_dim(handle: usize): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  return c == null ? -1 : c.dim;
}

export function corpus_kind(handle: usize): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  return c == null ? -1 : c.kind;
}

/** Vectors the corpus can hold before it allocates again. */
export function corpus_capacity(handle: usize): f64 {
  lastError = E.OK;
  let c = corpusOf(handle);
  return c == null ? -1 : <f64>corpusCapacity(c);
}

/** Bytes the corpus holds in linear memory. */
export function corpus_bytes(handle: usize): f64 {
  lastError = E.OK;
  let c = corpusOf(handle);
  return c == null ? -1 : <f64>corpusBytes(c);
}

/** Bytes of row data one scan reads (size x padded row). */
export function corpus_scan_bytes(handle: usize): f64 {
  lastError = E.OK;
  let c = corpusOf(handle);
  return c == null ? -1 : <f64>corpusScanBytes(c);
}

/** Writes vector `index` as float32 (int8 corpora: dequantised) to `out` (`dim` floats); 0 or -1. */
export function corpus_get(handle: usize, index: i32, out: usize): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  if (c == null) return -1;
  if (index < 0 || index >= c.size) return fail(E.E_INDEX);
  if (!inBuffer(out, floats(1, c.dim))) return fail(E.E_POINTER);
  corpusRead(c, index, out);
  return 0;
}

/** The probe over the corpus's row bytes (the bytes a scan reads). */
export function corpus_probe(handle: usize): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  if (c == null) return -1;
  return corpusProbe(c);
}

/** Checks a metric and `nq` queries at `queries`; on failure sets the error and answers false. */
function checkQueries(c: Corpus, queries: usize, nq: i32, metric: i32): bool {
  let code = E.OK;
  if (metric != METRIC_DOT && metric != METRIC_COSINE) code = E.E_METRIC;
  else if (nq < 1 || nq > MAX_BATCH) code = E.E_COUNT;
  else if (!inBuffer(queries, floats(nq, c.dim))) code = E.E_POINTER;
  else if (!allFinite(queries, nq * c.dim)) code = E.E_NONFINITE;
  lastError = code;
  return code == E.OK;
}

/** Scores of one query against every vector, in index order, to `out` (f32 x size); 0 or -1. */
export function corpus_scores(handle: usize, query: usize, metric: i32, out: usize): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  if (c == null) return -1;
  if (!checkQueries(c, query, 1, metric)) return -1;
  if (c.size > 0 && !inBuffer(out, <u64>c.size * 4)) return fail(E.E_POINTER);
  let qb = <usize>queryBytes(c);
  let scratch = allocate(qb + 16);
  prepareQueries(c, query, 1, metric == METRIC_COSINE, scratch, scratch + qb);
  corpusScores(c, scratch, load<f32>(scratch + qb), metric == METRIC_COSINE, out);
  release(scratch, qb + 16);
  return 0;
}

/**
 * Top-k of `nq` queries (float32, contiguous at `queries`) by `metric` (0: dot, 1: cosine), in one pass over the
 * corpus. For query q, results q * k .. q * k + k - 1 of `out_indices` (u32) and `out_scores` (f32) hold its k best
 * vectors, best first; equal scores are ordered by index, lower first. 0 or -1.
 */
export function corpus_topk(handle: usize, queries: usize, nq: i32, k: i32, metric: i32, out_indices: usize, out_scores: usize): i32 {
  lastError = E.OK;
  let c = corpusOf(handle);
  if (c == null) return -1;
  if (!checkQueries(c, queries, nq, metric)) return -1;
  if (k < 1 || k > MAX_K || k > c.size) return fail(E.E_K);
  let results = <u64>nq * <u64>k * 4;
  if (!inBuffer(out_indices, results) || !inBuffer(out_scores, results)) return fail(E.E_POINTER);
  // One scratch block: prepared queries, their factors, heap sizes, heap scores, heap indices.
  let qb = <usize>queryBytes(c);
  let qArea = <usize>nq * qb;
  let nqBytes = <usize>nq << 2;
  let heapArea = <usize>results;
  let bytes = qArea + 2 * nqBytes + 2 * heapArea;
  let scratch = allocate(bytes);
  let factors = scratch + qArea;
  let sizes = factors + nqBytes;
  let hs = sizes + nqBytes;
  let hi = hs + heapArea;
  memory.fill(sizes, 0, nqBytes);
  let cos = metric == METRIC_COSINE;
  prepareQueries(c, queries, nq, cos, scratch, factors);
  corpusScan(c, scratch, factors, nq, k, cos, hs, hi, sizes);
  let kb = <usize>k << 2;
  for (let q = 0; q < nq; q++) {
    let off = <usize>q * kb;
    heapDrain(hs + off, hi + off, k, out_scores + off, out_indices + off);
  }
  release(scratch, bytes);
  return 0;
}
