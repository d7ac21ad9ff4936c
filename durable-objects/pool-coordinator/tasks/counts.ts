import { TASK_STATUSES, UNFINISHED_STATUSES, type StatusCounts, type TaskStatus } from "../../../contract/records.ts";

/**
 * `status_counts` (tasks by tenant and status) as a transaction changes it. Every status change of a task notes
 * itself here ({@link moved}, through tasks/transitions.ts), and {@link flush} writes the net change at the end of
 * the transaction: one statement per tenant and status touched instead of a trigger running per row.
 */
export class StatusCountDeltas {
  private deltas = new Map<string, Map<TaskStatus, number>>();

  constructor(private readonly sql: SqlStorage) {}

  moved(tenant: string, from: TaskStatus | null, to: TaskStatus | null, n = 1): void {
    if (from === to || n === 0) return;
    let byStatus = this.deltas.get(tenant);
    if (!byStatus) this.deltas.set(tenant, (byStatus = new Map()));
    if (from !== null) byStatus.set(from, (byStatus.get(from) ?? 0) - n);
    if (to !== null) byStatus.set(to, (byStatus.get(to) ?? 0) + n);
  }

  /** Writes the net status changes of this transaction. Call at its end, inside it. */
  flush(): void {
    for (const [tenant, byStatus] of this.deltas) {
      for (const [status, n] of byStatus) {
        if (n > 0) {
          this.sql.exec(
            "INSERT INTO status_counts (tenant, status, n) VALUES (?1, ?2, ?3) ON CONFLICT (tenant, status) DO UPDATE SET n = n + ?3",
            tenant,
            status,
            n,
          );
        } else if (n < 0) {
          // A decrease needs the row (an upsert would check its CHECK on the would-be row first); n >= 0 holds.
          const cursor = this.sql.exec("UPDATE status_counts SET n = n + ?3 WHERE tenant = ?1 AND status = ?2", tenant, status, n);
          if (cursor.rowsWritten !== 1) throw new Error(`status count of ${tenant}/${status} would go below zero`);
        }
      }
    }
    this.deltas.clear();
  }

  /** Forgets the changes of a transaction that rolled back. */
  discard(): void {
    this.deltas.clear();
  }

  /** Waiting, queued and leased tasks of a tenant, with what this transaction changed and has not written yet. */
  unfinishedOf(tenant: string): number {
    const stored =
      this.sql
        .exec<{ n: number | null }>(
          `SELECT sum(n) AS n FROM status_counts WHERE tenant = ? AND status IN (${UNFINISHED_STATUSES.map(() => "?").join(", ")})`,
          tenant,
          ...UNFINISHED_STATUSES,
        )
        .one().n ?? 0;
    const pending = this.deltas.get(tenant);
    return stored + (pending ? UNFINISHED_STATUSES.reduce((sum, status) => sum + (pending.get(status) ?? 0), 0) : 0);
  }

  /** Stored counts, per tenant and status (rows with n > 0). */
  rows(): { tenant: string; status: TaskStatus; count: number }[] {
    return this.sql
      .exec<{ tenant: string; status: TaskStatus; n: number }>("SELECT tenant, status, n FROM status_counts WHERE n > 0 ORDER BY tenant, status")
      .toArray()
      .map(({ tenant, status, n }) => ({ tenant, status, count: n }));
  }

  /** Counts by status of one tenant, or of all (null). */
  of(tenant: string | null): StatusCounts {
    const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as StatusCounts;
    for (const row of this.rows()) if (tenant === null || row.tenant === tenant) counts[row.status] += row.count;
    return counts;
  }
}
