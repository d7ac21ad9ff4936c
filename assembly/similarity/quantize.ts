// Symmetric int8 quantisation with one scale per vector: q_i = round(x_i * 127 / max|x|), so the vector stands
// for x̂ = scale * q with scale = max|x| / 127. Everything an int8 corpus computes (dot products, norms, cosines)
// is exact arithmetic on x̂, up to float32 rounding of the final products.

/** Scale of the last quantised vector (max|x| / 127; 0 for the zero vector). */
export let quantScale: f32 = 0;
/** 1 / ||q|| of the last quantised integer vector (0 for the zero vector). */
export let quantInvNorm: f32 = 0;

/**
 * Quantises `n` float32 values at `src` into `padded` elements at `dst`, each `elementBytes` wide (1: the int8 rows
 * of a corpus; 2: a query widened to int16 for `i32x4.dot_i16x8_s`); elements past `n` are zero. Sets
 * `quantScale` and `quantInvNorm`.
 */
export function quantize(src: usize, n: i32, dst: usize, elementBytes: i32, padded: i32): void {
  let maxAbs: f32 = 0;
  for (let i = 0; i < n; i++) maxAbs = max(maxAbs, abs(load<f32>(src + (<usize>i << 2))));
  let inv: f64 = maxAbs > 0 ? 127.0 / <f64>maxAbs : 0;
  let sumSquares: i64 = 0;
  for (let i = 0; i < padded; i++) {
    let q: i32 = 0;
    if (i < n) q = min(127, max(-127, <i32>nearest(<f64>load<f32>(src + (<usize>i << 2)) * inv)));
    sumSquares += <i64>(q * q);
    if (elementBytes == 1) store<i8>(dst + <usize>i, <i8>q);
    else store<i16>(dst + (<usize>i << 1), <i16>q);
  }
  quantScale = maxAbs / 127;
  quantInvNorm = sumSquares > 0 ? <f32>(1.0 / Math.sqrt(<f64>sumSquares)) : 0;
}
