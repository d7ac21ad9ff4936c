/**
 * The duration histogram every pool shard keeps (submit to success): fixed bucket bounds, so shards' counts add up
 * bucket by bucket and a quantile of the sum is the pool's quantile.
 */

/** Upper bounds (ms) of the duration histogram; the last bucket is +Inf. */
export const DURATION_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 1_800_000] as const;
const INF = Number.MAX_SAFE_INTEGER;

/** Index of the histogram bucket a duration falls in. */
export function boundIndex(ms: number): number {
  const i = DURATION_BOUNDS_MS.findIndex((b) => ms <= b);
  return i === -1 ? DURATION_BOUNDS_MS.length : i;
}

export function boundValue(index: number): number {
  return index < DURATION_BOUNDS_MS.length ? DURATION_BOUNDS_MS[index]! : INF;
}

/**
 * A quantile from bucket counts, interpolated linearly inside the bucket it falls in (as Prometheus'
 * histogram_quantile does); the open last bucket answers its lower bound.
 */
export function quantileFromBuckets(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i]!;
    if (n > 0 && seen + n >= rank) {
      const lower = i === 0 ? 0 : DURATION_BOUNDS_MS[i - 1]!;
      if (i >= DURATION_BOUNDS_MS.length) return lower;
      const upper = DURATION_BOUNDS_MS[i]!;
      return Math.round(lower + ((upper - lower) * (rank - seen)) / n);
    }
    seen += n;
  }
  return DURATION_BOUNDS_MS[DURATION_BOUNDS_MS.length - 1]!;
}

