// The bounded top-k heap: a binary min-heap of at most k (score, index) pairs whose root is the worst pair kept,
// so a scan compares each candidate with the root only. "Better" is the higher score, and for equal scores the
// lower index; NaN scores (only from float32 overflow: inputs are checked finite) count as -Infinity.
// Scores live at `hs` (f32[k]) and indices at `hi` (u32[k]).

/** Is (sa, ia) worse than (sb, ib)? */
// @ts-ignore: decorator
@inline
export function worse(sa: f32, ia: u32, sb: f32, ib: u32): bool {
  return sa < sb || (sa == sb && ia > ib);
}

function siftDown(hs: usize, hi: usize, size: i32, pos: i32): void {
  let s = load<f32>(hs + (<usize>pos << 2));
  let x = load<u32>(hi + (<usize>pos << 2));
  while (true) {
    let child = 2 * pos + 1;
    if (child >= size) break;
    let cs = load<f32>(hs + (<usize>child << 2));
    let ci = load<u32>(hi + (<usize>child << 2));
    let right = child + 1;
    if (right < size) {
      let rs = load<f32>(hs + (<usize>right << 2));
      let ri = load<u32>(hi + (<usize>right << 2));
      if (worse(rs, ri, cs, ci)) {
        child = right;
        cs = rs;
        ci = ri;
      }
    }
    if (!worse(cs, ci, s, x)) break;
    store<f32>(hs + (<usize>pos << 2), cs);
    store<u32>(hi + (<usize>pos << 2), ci);
    pos = child;
  }
  store<f32>(hs + (<usize>pos << 2), s);
  store<u32>(hi + (<usize>pos << 2), x);
}

/** Adds a pair to a heap of `size` < k entries; answers the new size. */
export function heapPush(hs: usize, hi: usize, size: i32, score: f32, index: u32): i32 {
  if (score != score) score = -Infinity;
  let pos = size;
  while (pos > 0) {
    let parent = (pos - 1) >> 1;
    let ps = load<f32>(hs + (<usize>parent << 2));
    let pi = load<u32>(hi + (<usize>parent << 2));
    if (!worse(score, index, ps, pi)) break;
    store<f32>(hs + (<usize>pos << 2), ps);
    store<u32>(hi + (<usize>pos << 2), pi);
    pos = parent;
  }
  store<f32>(hs + (<usize>pos << 2), score);
  store<u32>(hi + (<usize>pos << 2), index);
  return size + 1;
}

/** Offers a pair to a heap that holds `k` entries: it replaces the root if it is better. */
// @ts-ignore: decorator
@inline
export function heapOffer(hs: usize, hi: usize, k: i32, score: f32, index: u32): void {
  if (worse(load<f32>(hs), load<u32>(hi), score, index)) {
    store<f32>(hs, score);
    store<u32>(hi, index);
    siftDown(hs, hi, k, 0);
  }
}

/** Empties a heap of `size` entries into (outScores, outIndices), best first. */
export function heapDrain(hs: usize, hi: usize, size: i32, outScores: usize, outIndices: usize): void {
  for (let n = size; n > 0; n--) {
    let last = n - 1;
    store<f32>(outScores + (<usize>last << 2), load<f32>(hs));
    store<u32>(outIndices + (<usize>last << 2), load<u32>(hi));
    if (last > 0) {
      store<f32>(hs, load<f32>(hs + (<usize>last << 2)));
      store<u32>(hi, load<u32>(hi + (<usize>last << 2)));
      siftDown(hs, hi, last, 0);
    }
  }
}
