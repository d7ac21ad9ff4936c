/**
 * Results are sealed with the key of their task's tenant before they are stored (the agent's tenant may differ: a
 * shared fleet). The tenant of a task pushed to an agent is held in memory (a task's tenant never changes), so
 * sealing its result does not read the task back first.
 */
import type { Settlement } from "../../contract/records.ts";
import type { KeyringEnv } from "../../lib/security/keyring.ts";
import { sealResult } from "../../lib/security/sealing.ts";
import { TaskTenants } from "./task-tenants.ts";

/** Tenants of pushed tasks held in memory (an id and a tenant: about 100 bytes each). */
const TASK_TENANTS_HELD = 100_000;

export interface ResultSealerHost {
  env: KeyringEnv;
  /** The tenants of these tasks as storage holds them; null while the pool has no storage. */
  tenantsOf(ids: readonly string[]): Map<string, string> | null;
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
}
