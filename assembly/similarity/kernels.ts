// The SIMD kernels. Each one runs f32x4 / i32x4 lanes over the bulk of its input and a scalar loop over the rest,
// so any length works (the tests cover lengths that are not a multiple of 4 or 16). Corpus rows and prepared
// queries are zero-padded to a multiple of 16 bytes, so in a scan the scalar tails never run.

/**
 * Dot product of two float32 vectors of `n` elements (any alignment). Four f32x4 accumulators over 16 elements
 * per step, then 4 at a time, a fixed horizontal sum, then the scalar tail: the order of the additions depends
 * on `n` only, so the same inputs always give the same bits.
 */
// @ts-ignore: decorator
@inline
export function dotF32(a: usize, b: usize, n: i32): f32 {
  let acc0 = f32x4.splat(0);
  let acc1 = f32x4.splat(0);
  let acc2 = f32x4.splat(0);
  let acc3 = f32x4.splat(0);
  let i = 0;
  let end16 = n & ~15;
  for (; i < end16; i += 16) {
    let pa = a + (<usize>i << 2);
    let pb = b + (<usize>i << 2);
    acc0 = f32x4.add(acc0, f32x4.mul(v128.load(pa, 0), v128.load(pb, 0)));
    acc1 = f32x4.add(acc1, f32x4.mul(v128.load(pa, 16), v128.load(pb, 16)));
    acc2 = f32x4.add(acc2, f32x4.mul(v128.load(pa, 32), v128.load(pb, 32)));
    acc3 = f32x4.add(acc3, f32x4.mul(v128.load(pa, 48), v128.load(pb, 48)));
  }
  let end4 = n & ~3;
  for (; i < end4; i += 4) {
    acc0 = f32x4.add(acc0, f32x4.mul(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
  }
  let s = f32x4.add(f32x4.add(acc0, acc1), f32x4.add(acc2, acc3));
  let sum = (f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1)) + (f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3));
  for (; i < n; i++) {
    sum += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  }
  return sum;
}

/**
 * Dot product of an int8 row and a query widened to int16, over `n` elements: i8x16 lanes are sign-extended to
 * i16x8 and multiplied-and-added pairwise into i32x4 (`i32x4.dot_i16x8_s`). Exact: |127 * 127 * 4096| < 2^31.
 */
// @ts-ignore: decorator
@inline
export function dotI8(row: usize, q16: usize, n: i32): i32 {
  let acc0 = i32x4.splat(0);
  let acc1 = i32x4.splat(0);
  let acc2 = i32x4.splat(0);
  let acc3 = i32x4.splat(0);
  let i = 0;
  let end32 = n & ~31;
  for (; i < end32; i += 32) {
    let r = row + <usize>i;
    let q = q16 + (<usize>i << 1);
    let r0 = v128.load(r, 0);
    let r1 = v128.load(r, 16);
    acc0 = i32x4.add(acc0, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(r0), v128.load(q, 0)));
    acc1 = i32x4.add(acc1, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(r0), v128.load(q, 16)));
    acc2 = i32x4.add(acc2, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(r1), v128.load(q, 32)));
    acc3 = i32x4.add(acc3, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(r1), v128.load(q, 48)));
  }
  let end16 = n & ~15;
  for (; i < end16; i += 16) {
    let r0 = v128.load(row + <usize>i);
    let q = q16 + (<usize>i << 1);
    acc0 = i32x4.add(acc0, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(r0), v128.load(q, 0)));
    acc1 = i32x4.add(acc1, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(r0), v128.load(q, 16)));
  }
  let s = i32x4.add(i32x4.add(acc0, acc1), i32x4.add(acc2, acc3));
  let sum = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
  for (; i < n; i++) {
    sum += <i32>load<i8>(row + <usize>i) * <i32>load<i16>(q16 + (<usize>i << 1));
  }
  return sum;
}

/** Sum of squares of a float32 vector, accumulated in float64 (f64x2), so norms neither overflow nor lose bits. */
export function sumSquaresF64(a: usize, n: i32): f64 {
  let acc0 = f64x2.splat(0);
  let acc1 = f64x2.splat(0);
  let i = 0;
  let end4 = n & ~3;
  for (; i < end4; i += 4) {
    let v = v128.load(a + (<usize>i << 2));
    let lo = f64x2.promote_low_f32x4(v);
    let hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
    acc0 = f64x2.add(acc0, f64x2.mul(lo, lo));
    acc1 = f64x2.add(acc1, f64x2.mul(hi, hi));
  }
  let s = f64x2.add(acc0, acc1);
  let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < n; i++) {
    let x = <f64>load<f32>(a + (<usize>i << 2));
    sum += x * x;
  }
  return sum;
}

/**
 * 1 / Euclidean norm as float32, or 0 for the zero vector (whose cosine with anything is defined as 0) and for
 * vectors so small (norm below 1 / float32 max, about 2.9e-39: only subnormal components) that the inverse
 * does not fit a float32: they count as zero vectors for cosine.
 */
export function inverseNorm(a: usize, n: i32): f32 {
  let ss = sumSquaresF64(a, n);
  if (ss == 0) return 0;
  let inv = 1.0 / Math.sqrt(ss);
  return inv <= <f64>f32.MAX_VALUE ? <f32>inv : 0;
}

/** Multiplies `n` float32 values in place by `factor`. */
export function scaleF32(a: usize, n: i32, factor: f32): void {
  let f = f32x4.splat(factor);
  let i = 0;
  let end4 = n & ~3;
  for (; i < end4; i += 4) {
    let p = a + (<usize>i << 2);
    v128.store(p, f32x4.mul(v128.load(p), f));
  }
  for (; i < n; i++) {
    let p = a + (<usize>i << 2);
    store<f32>(p, load<f32>(p) * factor);
  }
}

/** Are all `n` float32 values finite? (x - x is 0 for finite x and NaN for NaN and infinities.) */
export function allFinite(a: usize, n: i32): bool {
  let acc = f32x4.splat(0);
  let i = 0;
  let end4 = n & ~3;
  for (; i < end4; i += 4) {
    let v = v128.load(a + (<usize>i << 2));
    acc = f32x4.add(acc, f32x4.sub(v, v));
  }
  let bad = v128.any_true(f32x4.ne(acc, acc));
  for (; i < n; i++) {
    let x = load<f32>(a + (<usize>i << 2));
    if (x - x != 0) bad = true;
  }
  return !bad;
}

/**
 * The memory-bandwidth probe: a streaming i32x4 sum over `bytes` bytes (integer lanes, so any bit pattern costs
 * the same; float lanes would hit slow denormals on int8 data). The sum is returned so the loads stay live.
 */
export function streamSum(p: usize, bytes: usize): i32 {
  let acc0 = i32x4.splat(0);
  let acc1 = i32x4.splat(0);
  let acc2 = i32x4.splat(0);
  let acc3 = i32x4.splat(0);
  let i: usize = 0;
  let end64 = bytes & ~<usize>63;
  for (; i < end64; i += 64) {
    let q = p + i;
    acc0 = i32x4.add(acc0, v128.load(q, 0));
    acc1 = i32x4.add(acc1, v128.load(q, 16));
    acc2 = i32x4.add(acc2, v128.load(q, 32));
    acc3 = i32x4.add(acc3, v128.load(q, 48));
  }
  let end16 = bytes & ~<usize>15;
  for (; i < end16; i += 16) acc0 = i32x4.add(acc0, v128.load(p + i));
  let s = i32x4.add(i32x4.add(acc0, acc1), i32x4.add(acc2, acc3));
  let sum = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
  for (; i < bytes; i++) sum += <i32>load<u8>(p + i);
  return sum;
}
