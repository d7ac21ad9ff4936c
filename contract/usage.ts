/**
 * Usage accounting (docs/resources.md, "Usage accounting"): what each tenant's leased tasks held in a pool, by
 * hour. A shard answers its own rows; the Worker adds up every shard of every pool the tenant used.
 */

/** One pool's (or one shard's) usage of a tenant over a window. Seconds are exact to the millisecond. */
export interface PoolUsage {
  pool: string;
  /** Leases that ended in the window (complete, fail, expiry, release, cancel of a leased task). */
  tasks: number;
  /** Seconds the tasks were held (lease to settle, never past the lease's expiry). */
  taskSeconds: number;
  /** taskSeconds times each task's `requires.gpu`. */
  gpuSeconds: number;
}

/** A tenant's totals since the shard began, for `/metrics` (`daa_task_seconds_total`, `daa_gpu_seconds_total`). */
export interface TenantUsageTotal {
  tenant: string;
  tasks: number;
  taskSeconds: number;
  gpuSeconds: number;
}

/** `GET /v1/tenants/:tenant/usage`. */
export interface UsageReport {
  tenant: string;
  from: string;
  to: string;
  pools: PoolUsage[];
}
