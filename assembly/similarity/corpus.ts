// A corpus: N vectors of one dimension, float32 or int8, held in linear memory for as long as it lives. Rows are
// padded to a multiple of 16 bytes (zeros) and kept in segments, each a contiguous rows x stride matrix, so adding
// vectors never copies the ones already there and a corpus is not limited by the allocator's largest block.
// Segments grow geometrically (the capacity doubles, from 16 rows) up to about SEGMENT_BYTES each, so a small
// corpus stays small and a large one is made of ~1 MiB segments. Per row a segment also keeps 1 / norm (float32
// rows: of x; int8 rows: of the integer vector q) and, for int8, the scale.
//
// Segment layout (rows = that segment's row count):
//   [row data: rows * stride bytes][inverse norms: f32 x rows][scales: f32 x rows, int8 only]
import { allocate, reallocate, release } from "./memory";
import { KIND_F32, KIND_I8, MAX_VECTORS, SEGMENT_BYTES } from "./limits";
import { dotF32, dotI8, inverseNorm, streamSum } from "./kernels";
import { heapDrain, heapOffer, heapPush } from "./heap";
import { quantInvNorm, quantScale, quantize } from "./quantize";

// @ts-ignore: decorator
@unmanaged
export class Corpus {
  kind: i32;
  dim: i32;
  /** Bytes per stored row: dim (int8) or 4 * dim (float32), rounded up to 16. */
  stride: i32;
  /** Bytes per row of the per-row fields: 4 (float32: inverse norm) or 8 (int8: inverse norm, scale). */
  fieldBytes: i32;
  /** The largest segment, in rows (about SEGMENT_BYTES of row data, at least 1). */
  maxSegmentRows: i32;
  size: i32;
  capacity: i32;
  segmentCount: i32;
  segmentSlots: i32;
  /** Segment table: segmentSlots entries of { address: usize, rows: u32 }. */
  segments: usize;
}

const SLOT: usize = 8;
const MIN_SEGMENT_ROWS: i32 = 16;

export function corpusCreate(kind: i32, dim: i32): Corpus {
  let c = changetype<Corpus>(allocate(offsetof<Corpus>()));
  c.kind = kind;
  c.dim = dim;
  c.stride = kind == KIND_I8 ? (dim + 15) & ~15 : ((dim << 2) + 15) & ~15;
  c.fieldBytes = kind == KIND_I8 ? 8 : 4;
  c.maxSegmentRows = max(1, SEGMENT_BYTES / c.stride);
  c.size = 0;
  c.capacity = 0;
  c.segmentCount = 0;
  c.segmentSlots = 0;
  c.segments = 0;
  return c;
}

// @ts-ignore: decorator
@inline
function segmentAddress(c: Corpus, s: i32): usize {
  return load<usize>(c.segments + <usize>s * SLOT);
}

// @ts-ignore: decorator
@inline
function segmentRows(c: Corpus, s: i32): i32 {
  return load<i32>(c.segments + <usize>s * SLOT, 4);
}

function segmentBytes(c: Corpus, rows: i32): usize {
  return <usize>rows * <usize>(c.stride + c.fieldBytes);
}

/** Bytes this corpus holds in linear memory (header, segment table, segments). */
export function corpusBytes(c: Corpus): u64 {
  return <u64>offsetof<Corpus>() + <u64>c.segmentSlots * SLOT + <u64>c.capacity * <u64>(c.stride + c.fieldBytes);
}

export function corpusCapacity(c: Corpus): u64 {
  return <u64>c.capacity;
}

export function corpusDestroy(c: Corpus): void {
  for (let s = 0; s < c.segmentCount; s++) release(segmentAddress(c, s), segmentBytes(c, segmentRows(c, s)));
  if (c.segmentSlots > 0) release(c.segments, <usize>c.segmentSlots * SLOT);
  release(changetype<usize>(c), offsetof<Corpus>());
}

/**
 * Makes room for `rows` vectors in all (rows <= MAX_VECTORS). One segment at a time, each entered in the table
 * right after its allocation: an out-of-memory trap at any point leaves a consistent corpus (some capacity more,
 * no vector more). `exact`: allocate just what is asked (reserve); otherwise at least double the capacity (add).
 */
export function corpusReserve(c: Corpus, rows: u64, exact: bool): void {
  while (<u64>c.capacity < rows) {
    let missing = <i32>(rows - <u64>c.capacity);
    let want = exact ? missing : max(missing, max(c.capacity, MIN_SEGMENT_ROWS));
    let segRows = min(want, c.maxSegmentRows);
    if (<u64>c.capacity + <u64>segRows > MAX_VECTORS) segRows = <i32>(MAX_VECTORS - <u64>c.capacity);
    if (c.segmentCount == c.segmentSlots) {
      let slots = max(8, c.segmentSlots * 2);
      if (c.segmentSlots == 0) c.segments = allocate(<usize>slots * SLOT);
      else c.segments = reallocate(c.segments, <usize>c.segmentSlots * SLOT, <usize>slots * SLOT);
      c.segmentSlots = slots;
    }
    let seg = allocate(segmentBytes(c, segRows));
    let entry = c.segments + <usize>c.segmentCount * SLOT;
    store<usize>(entry, seg);
    store<i32>(entry, segRows, 4);
    c.segmentCount++;
    c.capacity += segRows;
  }
}

/** The segment holding row `index` (< capacity), and the row's position in it (`foundRow`). */
let foundRow: i32 = 0;
function findSegment(c: Corpus, index: i32): i32 {
  let s = 0;
  let first = 0;
  while (true) {
    let rows = segmentRows(c, s);
    if (index < first + rows) break;
    first += rows;
    s++;
  }
  foundRow = index - first;
  return s;
}

/** Appends `count` vectors (float32, `dim` each, contiguous at `src`); the caller has validated them. */
export function corpusAppend(c: Corpus, src: usize, count: i32): void {
  corpusReserve(c, <u64>c.size + <u64>count, false);
  let dim = c.dim;
  let stride = <usize>c.stride;
  let s = findSegment(c, c.size);
  let r = foundRow;
  for (let j = 0; j < count; j++) {
    let rows = segmentRows(c, s);
    if (r == rows) {
      s++;
      r = 0;
      rows = segmentRows(c, s);
    }
    let base = segmentAddress(c, s);
    let fields = base + <usize>rows * stride;
    let from = src + <usize>j * (<usize>dim << 2);
    let row = base + <usize>r * stride;
    if (c.kind == KIND_F32) {
      memory.copy(row, from, <usize>dim << 2);
      memory.fill(row + (<usize>dim << 2), 0, stride - (<usize>dim << 2));
      store<f32>(fields + (<usize>r << 2), inverseNorm(from, dim));
    } else {
      quantize(from, dim, row, 1, c.stride);
      store<f32>(fields + (<usize>r << 2), quantInvNorm);
      store<f32>(fields + (<usize>rows << 2) + (<usize>r << 2), quantScale);
    }
    r++;
    c.size++;
  }
}

export function canGrowBy(c: Corpus, count: i32): bool {
  return <u64>c.size + <u64>count <= MAX_VECTORS;
}

/** Writes vector `index` (< size) as float32 (int8: dequantised, scale * q) to `out`. */
export function corpusRead(c: Corpus, index: i32, out: usize): void {
  let s = findSegment(c, index);
  let r = foundRow;
  let rows = segmentRows(c, s);
  let base = segmentAddress(c, s);
  let row = base + <usize>r * <usize>c.stride;
  if (c.kind == KIND_F32) {
    memory.copy(out, row, <usize>c.dim << 2);
  } else {
    let scale = load<f32>(base + <usize>rows * <usize>c.stride + (<usize>rows << 2) + (<usize>r << 2));
    for (let i = 0; i < c.dim; i++) store<f32>(out + (<usize>i << 2), <f32>load<i8>(row + <usize>i) * scale);
  }
}

/** Bytes of a prepared query: float32 padded like a row, or int16 (twice the int8 row). */
export function queryBytes(c: Corpus): i32 {
  return c.kind == KIND_F32 ? c.stride : c.stride << 1;
}

/**
 * Prepares `nq` queries (float32, contiguous at `src`) at `dst` (queryBytes each) with one float32 factor each at
 * `factors`: float32 dot 1, float32 cosine 1 / ||q||, int8 dot the query's scale, int8 cosine 1 / ||q_int||.
 */
export function prepareQueries(c: Corpus, src: usize, nq: i32, cosine: bool, dst: usize, factors: usize): void {
  let dim = c.dim;
  let qb = queryBytes(c);
  for (let q = 0; q < nq; q++) {
    let from = src + <usize>q * (<usize>dim << 2);
    let to = dst + <usize>q * <usize>qb;
    let f: f32 = 1;
    if (c.kind == KIND_F32) {
      memory.copy(to, from, <usize>dim << 2);
      memory.fill(to + (<usize>dim << 2), 0, <usize>qb - (<usize>dim << 2));
      if (cosine) f = inverseNorm(from, dim);
    } else {
      quantize(from, dim, to, 2, c.stride);
      f = cosine ? quantInvNorm : quantScale;
    }
    store<f32>(factors + (<usize>q << 2), f);
  }
}

// The score of one row against one prepared query. A scan and `corpusScores` both use these, so the top-k of a
// scan is exactly the top of the full list of scores. The factors are applied one at a time, row first:
// (dot * 1/|row|) is at most |query|, so tiny vectors with huge inverse norms cannot overflow.

// @ts-ignore: decorator
@inline
function scoreF32(row: usize, q: usize, floats: i32, cosine: bool, rowInv: f32, qFactor: f32): f32 {
  let s = dotF32(row, q, floats);
  return cosine ? (s * rowInv) * qFactor : s;
}

// @ts-ignore: decorator
@inline
function scoreI8(row: usize, q16: usize, bytes: i32, rowFactor: f32, qFactor: f32): f32 {
  return (<f32>dotI8(row, q16, bytes) * rowFactor) * qFactor;
}

/** All scores of one prepared query, in index order, to `out` (f32[size]). */
export function corpusScores(c: Corpus, q: usize, qFactor: f32, cosine: bool, out: usize): void {
  let stride = c.stride;
  let isF32 = c.kind == KIND_F32;
  let index = 0;
  let total = c.size;
  for (let s = 0; s < c.segmentCount && index < total; s++) {
    let base = segmentAddress(c, s);
    let segRows = segmentRows(c, s);
    let rows = min(segRows, total - index);
    let fields = base + <usize>segRows * <usize>stride;
    if (isF32) {
      for (let r = 0; r < rows; r++) {
        let rowInv = load<f32>(fields + (<usize>r << 2));
        store<f32>(out + (<usize>(index + r) << 2), scoreF32(base + <usize>r * <usize>stride, q, stride >> 2, cosine, rowInv, qFactor));
      }
    } else {
      let factors = cosine ? fields : fields + (<usize>segRows << 2);
      for (let r = 0; r < rows; r++) {
        let rf = load<f32>(factors + (<usize>r << 2));
        store<f32>(out + (<usize>(index + r) << 2), scoreI8(base + <usize>r * <usize>stride, q, stride, rf, qFactor));
      }
    }
    index += rows;
  }
}

/**
 * Top-k of `nq` prepared queries in one pass over the corpus: each row is read from memory once and scored
 * against every query while it is in cache. Heap q keeps k pairs at (hs + q * k * 4, hi + q * k * 4) and its
 * size at sizes[q] (all zero on entry).
 */
/** Sum of the bytes touched ahead of the int8 kernel: kept in a global so that the loads stay in the code. */
let touched: i32 = 0;

export function corpusScan(c: Corpus, queries: usize, factors: usize, nq: i32, k: i32, cosine: bool, hs: usize, hi: usize, sizes: usize): void {
  let stride = c.stride;
  let isF32 = c.kind == KIND_F32;
  let qb = <usize>queryBytes(c);
  let heapBytes = <usize>k << 2;
  let index = 0;
  let total = c.size;
  for (let s = 0; s < c.segmentCount && index < total; s++) {
    let base = segmentAddress(c, s);
    let segRows = segmentRows(c, s);
    let rows = min(segRows, total - index);
    let fields = base + <usize>segRows * <usize>stride;
    let rowFactors = isF32 || cosine ? fields : fields + (<usize>segRows << 2);
    for (let r = 0; r < rows; r++) {
      let row = base + <usize>r * <usize>stride;
      if (!isF32) {
        // One load per cache line of the row, all issued before the arithmetic that depends on them: from memory
        // (not cache) this lifts the int8 scan from about 13 to 20 M rows/s, as the row's misses now overlap
        // (memory-level parallelism; bench/RESULTS.md). The float32 kernel does not gain from it.
        let lines = 0;
        for (let o = 0; o < stride; o += 64) lines += <i32>load<u8>(row + <usize>o);
        touched += lines;
      }
      let rf = load<f32>(rowFactors + (<usize>r << 2));
      let id = <u32>(index + r);
      for (let q = 0; q < nq; q++) {
        let qf = load<f32>(factors + (<usize>q << 2));
        let score = isF32
          ? scoreF32(row, queries + <usize>q * qb, stride >> 2, cosine, rf, qf)
          : scoreI8(row, queries + <usize>q * qb, stride, rf, qf);
        let qs = hs + <usize>q * heapBytes;
        let qi = hi + <usize>q * heapBytes;
        let sizeAt = sizes + (<usize>q << 2);
        let size = load<i32>(sizeAt);
        if (size < k) store<i32>(sizeAt, heapPush(qs, qi, size, score, id));
        else heapOffer(qs, qi, k, score, id);
      }
    }
    index += rows;
  }
}

export { heapDrain };

/** The bandwidth probe over exactly the row bytes a scan reads: answers the streaming sum. */
export function corpusProbe(c: Corpus): i32 {
  let sum = 0;
  let index = 0;
  for (let s = 0; s < c.segmentCount && index < c.size; s++) {
    let rows = min(segmentRows(c, s), c.size - index);
    sum += streamSum(segmentAddress(c, s), <usize>rows * <usize>c.stride);
    index += rows;
  }
  return sum;
}

/** Bytes of row data a scan reads. */
export function corpusScanBytes(c: Corpus): u64 {
  return <u64>c.size * <u64>c.stride;
}

