/** Retry backoff for failed attempts: exponential from 1 s, doubling, capped at 5 minutes, with jitter. */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, maxMs: 300_000 };

/**
 * The delay before the next try after `failedAttempts` failed attempts (1-based).
 * "Equal jitter": half of the exponential step is fixed and half is random, so tasks that failed together
 * spread out without any retry coming back sooner than half its step.
 *
 * @example retryDelayMs(3, 0.5) // 4 s step -> 3000 ms
 */
export function retryDelayMs(failedAttempts: number, random01: number, { baseMs, maxMs }: BackoffPolicy = DEFAULT_BACKOFF): number {
  const exponent = Math.max(0, Math.min(failedAttempts - 1, 30));
  const step = Math.min(maxMs, baseMs * 2 ** exponent);
  const unit = Math.min(Math.max(random01, 0), 1);
  return Math.round(step / 2 + (unit * step) / 2);
}
