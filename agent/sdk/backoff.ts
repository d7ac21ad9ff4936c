// Exponential backoff with "equal jitter" for reconnects and retried requests: the delay before the n-th retry
// (n = 0, 1, ...) is drawn from [step / 2, step] with step = min(baseMs * factor^n, maxMs). The random half spreads
// a fleet that lost the mesh at the same moment; the fixed half guarantees a real pause, never a hot loop.

export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  factor?: number;
  /** A source in [0, 1); injectable so that tests can pin the jitter. */
  random?: () => number;
}

/** The step (upper bound of the delay) before retry number `attempt` (0-based). */
export function backoffStep(attempt: number, { baseMs = 250, maxMs = 30_000, factor = 2 }: BackoffOptions = {}): number {
  // Capping the exponent keeps factor^attempt finite however long an outage lasts.
  return Math.min(maxMs, baseMs * factor ** Math.min(attempt, 64));
}

export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const step = backoffStep(attempt, options);
  const random = options.random ?? Math.random;
  return Math.round(step / 2 + random() * (step / 2));
}

/** Counts consecutive failures; `reset()` after a success (or a connection that stayed up long enough). */
export class Backoff {
  private attempt = 0;
  private readonly options: BackoffOptions;

  constructor(options: BackoffOptions = {}) {
    this.options = options;
  }

  /** The delay to wait before the next try; each call counts one more failure. */
  next(): number {
    return backoffDelay(this.attempt++, this.options);
  }

  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}
