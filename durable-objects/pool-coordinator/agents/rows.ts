import type { AgentLoad, AgentRecord, AgentState, BreakerState } from "../../../contract/records.ts";

export interface AgentRow {
  [column: string]: SqlStorageValue;
  agent_id: string;
  tenant: string | null;
  state: AgentState;
  capabilities: string;
  cpu: number;
  memory_mb: number;
  gpu: number;
  max_concurrency: number;
  load: string;
  metadata: string;
  breaker: BreakerState;
  last_heartbeat_at: number;
  registered_at: number;
  timer_at: number | null;
  registered_by: string | null;
  credits: number;
  consecutive_failures: number;
  breaker_until: number | null;
  latency_ewma_ms: number | null;
  home: 0 | 1;
}

/** What a lease reads of an agent's row to know which lanes it may take. */
export type FitRow = Pick<AgentRow, "agent_id" | "tenant" | "capabilities" | "cpu" | "memory_mb" | "gpu">;

export const IDLE_LOAD: AgentLoad = { currentLoad: 0, queueDepth: 0, avgLatencyMs: 0 };

export function toAgentRecord(row: AgentRow, pool: string, shard: number, inFlight: number): AgentRecord {
  return {
    agentId: row.agent_id,
    pool,
    tenant: row.tenant,
    state: row.state,
    capabilities: JSON.parse(row.capabilities) as string[],
    resources: { cpu: row.cpu, memoryMb: row.memory_mb, gpu: row.gpu },
    maxConcurrency: row.max_concurrency,
    inFlight,
    load: JSON.parse(row.load) as AgentLoad,
    metadata: row.metadata,
    breaker: row.breaker,
    lastHeartbeatAt: row.last_heartbeat_at,
    registeredAt: row.registered_at,
    latencyMs: row.latency_ewma_ms === null ? null : Math.round(row.latency_ewma_ms * 10) / 10,
    credits: row.credits,
    shard,
    home: row.home === 1,
  };
}
