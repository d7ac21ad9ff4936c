/**
 * The tenant of each task pushed to an agent, held in memory (a task's tenant never changes) so that sealing its
 * result, when the agent completes it, does not read the task back first. Bounded by count, oldest first; a miss
 * (a restart, a task leased over HTTP, an evicted entry) reads storage.
 */
export class TaskTenants {
  private readonly entries = new Map<string, string>();

  constructor(private readonly maxEntries: number) {}

  remember(id: string, tenant: string): void {
    this.entries.delete(id);
    this.entries.set(id, tenant);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** The tenants of these ids: those held, plus what `read` answers for the others (one read for all of them). */
  resolve(ids: readonly string[], read: (missing: string[]) => Map<string, string>): Map<string, string> {
    const out = new Map<string, string>();
    const missing: string[] = [];
    for (const id of ids) {
      const tenant = this.entries.get(id);
      if (tenant === undefined) missing.push(id);
      else out.set(id, tenant);
    }
    if (missing.length > 0) for (const [id, tenant] of read(missing)) out.set(id, tenant);
    return out;
  }

  /** The task is final or its lease is over: its entry is no longer worth its memory. */
  forget(id: string): void {
    this.entries.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }
}
