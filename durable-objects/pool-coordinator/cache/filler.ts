/**
 * Writes the output cache entries of tasks that succeeded (fills.ts), after the commit that made them due: the task
 * as it succeeded (payload and result opened, then the whole entry sealed under the tenant's key) goes to R2 first,
 * then the tenant's CacheIndex records it and answers the cache generation, then KV gets it under that generation
 * (lib/cache/levels.ts). L1 fills at the first lookup in each isolate. One run at a time; what fails is retried.
 */
import type { CacheEntry } from "../../../contract/cache.ts";
import type { PoolConfig, TaskRecord } from "../../../contract/records.ts";
import { sealEntry, writeL2, writeL3 } from "../../../lib/cache/levels.ts";
import { openTask } from "../../../lib/security/sealing.ts";
import type { PoolCore } from "../core.ts";
import type { FillJob } from "./fills.ts";

/** Fills written per run step. */
const STEP = 20;

export interface CacheFillerHost {
  env: Env;
  core(): PoolCore | null;
  apply<T>(fn: (core: PoolCore, now: number) => T): { ok: true; value: T } | { ok: false };
  clock(): number;
  /** Vectors of semantic types into the tenant's index (the semantic cache). */
  upsertVector?(tenant: string, index: string, id: string, vector: number[], metadata: Record<string, string>): Promise<void>;
}

export class CacheFiller {
  private running: Promise<void> | null = null;
  private readonly host: CacheFillerHost;

  constructor(host: CacheFillerHost) {
    this.host = host;
  }

  /** After commits: the fills that became due, once at a time. */
  flush(): Promise<void> {
    const core = this.host.core();
    if (!core?.cacheFills.due) return this.running ?? Promise.resolve();
    core.cacheFills.due = false;
    this.running ??= this.run().finally(() => (this.running = null));
    return this.running;
  }

  private async run(): Promise<void> {
    for (;;) {
      const taken = this.host.apply((core, now) => {
        const jobs = core.cacheFills.take(now, STEP);
        const tasks = new Map(jobs.map((j) => [j.taskId, core.tasks.record(j.taskId)] as const));
        return { jobs, tasks, config: core.config() };
      });
      if (!taken.ok || taken.value.jobs.length === 0) return;
      const { jobs, tasks, config } = taken.value;
      const results = await Promise.all(jobs.map((job) => this.fill(job, tasks.get(job.taskId) ?? null, config).then(() => true, (err) => (console.warn(`cache fill of task ${job.taskId} failed`, err), false))));
      const filled = jobs.filter((_, i) => results[i]);
      const failed = jobs.filter((_, i) => !results[i]);
      this.host.apply((core, now) => {
        const givenUp = core.cacheFills.settle(filled, failed, now);
        for (const job of filled) core.stats.count(`cache.fill ${job.type}`, 1);
        for (const job of givenUp) core.stats.count(`cache.fill_failed ${job.type}`, 1);
      });
      if (jobs.length < STEP) return;
    }
  }

  private async fill(job: FillJob, task: TaskRecord | null, config: PoolConfig): Promise<void> {
    // A task purged or moved since it succeeded has nothing to cache here.
    if (!task || task.status !== "succeeded") return;
    const { env } = this.host;
    const now = this.host.clock();
    const opened = await openTask(env, task);
    const entry: CacheEntry = {
      key: job.fill.key,
      tenant: task.tenant,
      type: task.type,
      version: job.fill.version,
      tags: job.fill.tags,
      task: opened,
      createdAt: now,
      expiresAt: now + config.cache.ttlMs.l3,
    };
    const sealed = await sealEntry(env, entry);
    await writeL3(env, entry, sealed);
    const generation = await env.CACHE_INDEX.getByName(task.tenant).register({
      key: entry.key,
      type: entry.type,
      version: entry.version,
      tags: entry.tags,
      sourceTaskId: task.id,
      createdAt: entry.createdAt,
      expiresAt: entry.expiresAt,
    });
    await writeL2(env, entry.key, generation, sealed, config.cache.ttlMs.l2, entry.expiresAt, now);
    const semantic = job.fill.semantic;
    if (semantic && this.host.upsertVector) {
      await this.host.upsertVector(task.tenant, semantic.index, entry.key, semantic.vector, { type: entry.type, cacheVersion: entry.version });
    }
  }
}
