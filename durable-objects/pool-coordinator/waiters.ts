/**
 * Long-poll callers parked in memory: agents waiting for work and clients waiting for a result. They are
 * connections, not state: a restart drops them and their callers simply poll again.
 */

interface Parked<T> {
  attempt: () => T | null;
  resolve: (value: T | null) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Callers that wait until `attempt` answers something. `poke()` lets each waiter try again, oldest first;
 * a waiter whose attempt answers null stays parked until its deadline.
 */
export class WaitList<T> {
  private parked: Parked<T>[] = [];

  get size(): number {
    return this.parked.length;
  }

  /** Resolves with the first non-null answer of `attempt` after a poke, or null after `waitMs`. */
  wait(waitMs: number, attempt: () => T | null): Promise<T | null> {
    return new Promise<T | null>((resolve) => {
      const entry: Parked<T> = {
        attempt,
        resolve,
        timer: setTimeout(() => {
          this.parked = this.parked.filter((p) => p !== entry);
          resolve(null);
        }, waitMs),
      };
      this.parked.push(entry);
    });
  }

  poke(): void {
    for (const entry of [...this.parked]) {
      const answer = entry.attempt();
      if (answer === null) continue;
      clearTimeout(entry.timer);
      this.parked = this.parked.filter((p) => p !== entry);
      entry.resolve(answer);
    }
  }
}

/** Callers waiting for particular keys (task ids) to be signalled. */
export class KeyedSignals {
  private readonly waiting = new Map<string, Set<() => void>>();

  /** Resolves true when `key` is signalled, false after `waitMs`. */
  wait(key: string, waitMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const set = this.waiting.get(key) ?? new Set();
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        set.delete(wake);
        if (set.size === 0) this.waiting.delete(key);
        resolve(false);
      }, waitMs);
      set.add(wake);
      this.waiting.set(key, set);
    });
  }

  signal(keys: Iterable<string>): void {
    for (const key of keys) {
      const set = this.waiting.get(key);
      if (!set) continue;
      this.waiting.delete(key);
      for (const wake of set) wake();
    }
  }
}
