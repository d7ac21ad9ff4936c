/**
 * Results are sealed with the key of their task's tenant before they are stored (the agent's tenant may differ: a
 * shared fleet). The tenant of a task pushed to an agent is held in memory (a task's tenant never changes), so
 * sealing its result does not read the task back first. A result over 128 KiB is written to R2 as it is sealed
 * (lib/security/sealing.ts); when its completion is then refused (a lost lease), its object is deleted again.
 */
import type { Outcome } from "../../contract/errors.ts";
import type { Settlement, SettlementResult } from "../../contract/records.ts";
import { blobKeysOf } from "../../lib/security/blob-refs.ts";
import { sealResult, type SealingEnv } from "../../lib/security/sealing.ts";
import { TaskTenants } from "./task-tenants.ts";

/** Tenants of pushed tasks held in memory (an id and a tenant: about 100 bytes each). */
const TASK_TENANTS_HELD = 100_000;

export interface ResultSealerHost {
  env: SealingEnv;
  /** The tenants of these tasks as storage holds them; null while the pool has no storage. */
  tenantsOf(ids: readonly string[]): Map<string, string> | null;
  /** R2 objects written for results no row took. */
  discard(keys: readonly string[]): Promise<void>;
}

/** Which settlements of a batch the pool applied, by position. */
export function applied(out: Outcome<readonly SettlementResult[]>): boolean[] {
  return out.ok ? out.value.map((r) => !("error" in r)) : [];
}

export class ResultSealer {
  readonly tenants = new TaskTenants(TASK_TENANTS_HELD);

  constructor(private readonly host: ResultSealerHost) {}

  /** The items with each completion's result sealed; an unknown task's is left as is, refused inside the transaction. */
  async seal(items: readonly Settlement[]): Promise<Settlement[]> {
    const ids = items.filter((i) => i.action === "complete").map((i) => i.id);
    if (ids.length === 0) return [...items];
    const tenants = this.tenants.resolve(ids, (missing) => this.host.tenantsOf(missing) ?? new Map());
    return Promise.all(
      items.map(async (item) => {
        if (item.action !== "complete") return item;
        const tenant = tenants.get(item.id);
        if (tenant === undefined) return item;
        return { ...item, result: await sealResult(this.host.env, tenant, item.result) };
      }),
    );
  }

  /**
   * Seals, applies the sealed items with `apply`, then deletes the R2 objects of results the pool did not take
   * (`accepted` says, by position, which it took). A throw says nothing of what committed: its objects are left
   * (an orphan at worst, never a row whose object is gone).
   */
  async settling<T>(items: readonly Settlement[], apply: (sealed: Settlement[]) => Promise<T>, accepted: (out: T) => readonly boolean[]): Promise<T> {
    const sealed = await this.seal(items);
    const out = await apply(sealed);
    await this.release(sealed, accepted(out));
    return out;
  }

  /** Deletes the R2 objects of sealed results that were not accepted (by position). */
  async release(sealed: readonly Settlement[], accepted: readonly boolean[]): Promise<void> {
    const keys = blobKeysOf(sealed.map((s, i) => (s.action === "complete" && accepted[i] !== true ? s.result : null)));
    if (keys.length > 0) await this.host.discard(keys);
  }
}
