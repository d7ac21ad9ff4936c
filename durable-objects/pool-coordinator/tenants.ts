/**
 * The tenants of one pool shard: which tenants use it (reads by others answer 404, and the directory lists each
 * for `GET /v1/pools`), and each tenant's own values (API.md, "Who may change what"): its quota of unfinished
 * tasks within the pool's ceiling, its fair-share weight and its GPU-seconds per hour.
 */
import { ApiError } from "../../contract/errors.ts";
import type { PoolConfig, Principal, TenantValues, TenantValuesPatch } from "../../contract/records.ts";

interface ValuesRow {
  [column: string]: SqlStorageValue;
  tenant: string;
  /** What an operator granted; null: the pool's ceiling. */
  max_unfinished_granted: number | null;
  /** What the tenant's admin set for itself, at most the grant; null: the grant. */
  max_unfinished_own: number | null;
  weight: number | null;
  gpu_seconds_per_hour: number | null;
}

export const DEFAULT_WEIGHT = 1;

export function poolNotFound(pool: string): ApiError {
  return new ApiError("not_found", `no pool ${pool}`);
}

export class PoolTenants {
  /** Tenants known to be in the tenants table (a cache: a first write of each tenant is looked at once). */
  private readonly known = new Set<string>();
  /** Values by tenant, read once (null: no row). */
  private readonly values = new Map<string, ValuesRow | null>();
  /** Whether some tenant may wait to be listed in the directory; rechecked from the table when true. */
  unlisted = true;

  constructor(
    private readonly sql: SqlStorage,
    private readonly pool: string,
    private readonly config: () => PoolConfig,
  ) {}

  /** Records that a tenant uses this pool (its first write). Call inside a transaction. */
  touch(principal: Principal, now: number): void {
    if (this.known.has(principal.tenant)) return;
    const cursor = this.sql.exec("INSERT OR IGNORE INTO tenants (tenant, first_at) VALUES (?, ?)", principal.tenant, now);
    cursor.toArray();
    if (cursor.rowsWritten > 0) this.unlisted = true;
    this.known.add(principal.tenant);
  }

  /** Whether no tenant has written to the pool yet. */
  fresh(): boolean {
    return this.sql.exec("SELECT 1 FROM tenants LIMIT 1").toArray().length === 0;
  }

  /**
   * Pool-level reads (stats, task lists, agents, config) answer 404 to a tenant that never used the pool, as if
   * it did not exist: existence does not leak across tenants.
   */
  require(principal: Principal): void {
    if (principal.allTenants) return;
    if (this.sql.exec("SELECT 1 FROM tenants WHERE tenant = ?", principal.tenant).toArray().length === 0) throw poolNotFound(this.pool);
  }

  unlistedTenants(): string[] {
    if (!this.unlisted) return [];
    const tenants = this.sql.exec<{ tenant: string }>("SELECT tenant FROM tenants WHERE listed = 0").toArray().map((r) => r.tenant);
    if (tenants.length === 0) this.unlisted = false;
    return tenants;
  }

  anyUnlisted(): boolean {
    return this.sql.exec("SELECT 1 FROM tenants WHERE listed = 0 LIMIT 1").toArray().length > 0;
  }

  markListed(tenant: string): void {
    this.sql.exec("UPDATE tenants SET listed = 1 WHERE tenant = ?", tenant);
  }

  // ---- values ---------------------------------------------------------------------------------------------

  private row(tenant: string): ValuesRow | null {
    let row = this.values.get(tenant);
    if (row === undefined) {
      row = this.sql.exec<ValuesRow>("SELECT * FROM tenant_values WHERE tenant = ?", tenant).toArray()[0] ?? null;
      if (this.values.size >= 10_000) this.values.clear();
      this.values.set(tenant, row);
    }
    return row;
  }

  /** The tenant's own quota of unfinished tasks: within the pool's ceiling, an operator's grant, its own choice. */
  maxUnfinished(tenant: string): number {
    const row = this.row(tenant);
    return Math.min(this.config().maxUnfinishedPerTenant, row?.max_unfinished_granted ?? Infinity, row?.max_unfinished_own ?? Infinity);
  }

  effective(tenant: string): TenantValues {
    const row = this.row(tenant);
    return { pool: this.pool, tenant, maxUnfinished: this.maxUnfinished(tenant), weight: row?.weight ?? DEFAULT_WEIGHT, gpuSecondsPerHour: row?.gpu_seconds_per_hour ?? null };
  }

  /** Who may read a tenant's values: the bootstrap key, operators, and that tenant's own credentials. */
  get(principal: Principal, tenant: string): TenantValues {
    this.require(principal);
    this.mayAccess(principal, tenant);
    return this.effective(tenant);
  }

  /**
   * Changes a tenant's values. Operators (and the bootstrap key) set anything, `maxUnfinished` within the pool's
   * ceiling; what they grant replaces what the tenant chose for itself. A tenant's admin may set only its own
   * `maxUnfinished`, at most what it was granted. Call inside a transaction (the caller has checked that the
   * principal may see the pool).
   */
  update(principal: Principal, tenant: string, patch: TenantValuesPatch): TenantValues {
    this.mayAccess(principal, tenant);
    const operator = principal.allTenants || principal.fleetOperator;
    const ceiling = this.config().maxUnfinishedPerTenant;
    if (patch.maxUnfinished !== undefined && patch.maxUnfinished > ceiling) {
      throw new ApiError("invalid_request", `maxUnfinished may not be above the pool's maxUnfinishedPerTenant (${ceiling})`, [
        { field: "maxUnfinished", message: `at most ${ceiling}, the pool's maxUnfinishedPerTenant` },
      ]);
    }
    const row = this.row(tenant);
    const next: ValuesRow = row ? { ...row } : { tenant, max_unfinished_granted: null, max_unfinished_own: null, weight: null, gpu_seconds_per_hour: null };
    if (operator) {
      if (patch.maxUnfinished !== undefined) {
        next.max_unfinished_granted = patch.maxUnfinished;
        next.max_unfinished_own = null;
      }
      if (patch.weight !== undefined) next.weight = patch.weight;
      if (patch.gpuSecondsPerHour !== undefined) next.gpu_seconds_per_hour = patch.gpuSecondsPerHour;
    } else {
      const refused = (["weight", "gpuSecondsPerHour"] as const).filter((f) => patch[f] !== undefined);
      if (refused.length > 0) throw new ApiError("forbidden", `only an operator may set ${refused.join(" and ")} of a tenant`);
      if (patch.maxUnfinished !== undefined) {
        const granted = Math.min(ceiling, next.max_unfinished_granted ?? Infinity);
        if (patch.maxUnfinished > granted) throw new ApiError("forbidden", `a tenant may lower its own maxUnfinished, not raise it above ${granted}; ask an operator`);
        next.max_unfinished_own = patch.maxUnfinished;
      }
    }
    this.sql.exec(
      `INSERT INTO tenant_values (tenant, max_unfinished_granted, max_unfinished_own, weight, gpu_seconds_per_hour) VALUES (?1, ?2, ?3, ?4, ?5)
       ON CONFLICT (tenant) DO UPDATE SET max_unfinished_granted = ?2, max_unfinished_own = ?3, weight = ?4, gpu_seconds_per_hour = ?5`,
      tenant,
      next.max_unfinished_granted,
      next.max_unfinished_own,
      next.weight,
      next.gpu_seconds_per_hour,
    );
    this.values.set(tenant, next);
    return this.effective(tenant);
  }

  /** Another tenant's values are as good as missing to a credential that is not an operator's. */
  private mayAccess(principal: Principal, tenant: string): void {
    if (principal.allTenants || principal.fleetOperator || principal.tenant === tenant) return;
    throw new ApiError("not_found", `no tenant ${tenant} in pool ${this.pool}`);
  }

  /** Forgets what a rolled-back transaction may have cached. */
  discard(): void {
    this.known.clear();
    this.values.clear();
    this.unlisted = true;
  }
}
