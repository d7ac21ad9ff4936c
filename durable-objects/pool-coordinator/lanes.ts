import type { Requirements } from "../../contract/records.ts";
import { laneAccepts, laneKey, normalizeRequirements, type AgentFit, type Lane } from "./queue-rules.ts";

interface LaneRow {
  [column: string]: SqlStorageValue;
  id: number;
  tenant: string;
  capabilities: string;
  cpu: number;
  memory_mb: number;
  gpu: number;
}

/**
 * Lanes: one per distinct (tenant, requirements). The table is the truth; the maps are a cache of it,
 * rebuilt when the object starts, so leasing can pick the lanes an agent fits without a query.
 */
export class LaneStore {
  private readonly byId = new Map<number, Lane>();
  private readonly byKey = new Map<string, number>();

  constructor(private readonly sql: SqlStorage) {
    for (const row of sql.exec<LaneRow>("SELECT * FROM lanes")) this.remember(row);
  }

  /** The lane of these requirements, created on first use. Call inside a transaction. */
  resolve(tenant: string, requires: Requirements): Lane {
    const key = laneKey(tenant, requires);
    const known = this.byKey.get(key);
    if (known !== undefined) return this.byId.get(known)!;
    const r = normalizeRequirements(requires);
    const row = this.sql
      .exec<LaneRow>(
        "INSERT INTO lanes (tenant, capabilities, cpu, memory_mb, gpu) VALUES (?, ?, ?, ?, ?) RETURNING *",
        tenant,
        JSON.stringify(r.capabilities),
        r.cpu,
        r.memoryMb,
        r.gpu,
      )
      .one();
    return this.remember(row);
  }

  get(id: number): Lane {
    const lane = this.byId.get(id);
    if (!lane) throw new Error(`lane ${id} missing from cache`);
    return lane;
  }

  /** Lanes whose tasks this agent may take. */
  fitting(agent: AgentFit): Lane[] {
    return [...this.byId.values()].filter((lane) => laneAccepts(lane, agent));
  }

  /** Forgets lanes created by a transaction that rolled back. */
  reload(): void {
    this.byId.clear();
    this.byKey.clear();
    for (const row of this.sql.exec<LaneRow>("SELECT * FROM lanes")) this.remember(row);
  }

  private remember(row: LaneRow): Lane {
    const capabilities = JSON.parse(row.capabilities) as string[];
    const lane: Lane = { id: row.id, tenant: row.tenant, requires: { capabilities, cpu: row.cpu, memoryMb: row.memory_mb, gpu: row.gpu } };
    this.byId.set(lane.id, lane);
    this.byKey.set(laneKey(lane.tenant, lane.requires), lane.id);
    return lane;
  }
}
