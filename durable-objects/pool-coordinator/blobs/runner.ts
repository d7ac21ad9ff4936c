/**
 * Deletes the R2 objects of purged tasks after the commit that purged them (deletes.ts holds the outbox), and the
 * objects of results sealed for completions the pool refused. One run at a time; what fails is retried on the
 * "blobs" timer kind.
 */
import type { Outcome } from "../../../contract/errors.ts";
import { dropBlobs, type SealingEnv } from "../../../lib/security/sealing.ts";
import type { PoolCore } from "../core.ts";
import { MAX_DELETE_ATTEMPTS } from "./deletes.ts";

/** Keys deleted per run step (one R2 call takes up to 1000). */
const STEP = 500;
/** A refused result's object that could not be deleted at once is tried again after this long. */
const DELETE_RETRY_MS = 5_000;

export interface BlobRunnerHost {
  env: SealingEnv;
  core(): PoolCore | null;
  apply<T>(fn: (core: PoolCore, now: number) => T): Outcome<T>;
  /** Moves the alarm to the deadlines the runner's own transactions set (they are not an operation's). */
  commitTimers(): Promise<void>;
}

export class BlobRunner {
  private running: Promise<void> | null = null;
  private readonly host: BlobRunnerHost;

  constructor(host: BlobRunnerHost) {
    this.host = host;
  }

  /** After commits: the deletes that became due, one run at a time. */
  flush(): Promise<void> {
    const core = this.host.core();
    if (!core?.blobDeletes.due) return this.running ?? Promise.resolve();
    core.blobDeletes.due = false;
    this.running ??= this.run().finally(() => (this.running = null));
    return this.running;
  }

  /**
   * Objects written for nothing (a result sealed for a completion that was refused): deleted now, and what fails
   * is left to the outbox. Never throws.
   */
  async discard(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    const failed = await dropBlobs(this.host.env, keys);
    if (failed.length === 0) return;
    const out = this.host.apply((core, now) => core.blobDeletes.add(failed, now + DELETE_RETRY_MS));
    if (out.ok) await this.host.commitTimers();
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const taken = this.host.apply((core, now) => core.blobDeletes.take(now, STEP));
        if (!taken.ok || taken.value.length === 0) return;
        const keys = taken.value;
        const failed = new Set(await dropBlobs(this.host.env, keys));
        const settled = this.host.apply((core, now) => core.blobDeletes.settle(keys.filter((k) => !failed.has(k)), [...failed], now));
        if (settled.ok && settled.value > 0) console.warn(`gave up deleting ${settled.value} blob(s) from R2 after ${MAX_DELETE_ATTEMPTS} attempts; a lifecycle rule on the bucket removes them`);
        if (failed.size > 0 || keys.length < STEP) return;
      }
    } finally {
      await this.host.commitTimers();
    }
  }
}
