/**
 * Who can be pushed work in a round: the connected agents that hold credits, are running and have room, with
 * what the strategies weigh, and the lanes each may take. Two queries whatever the number of agents.
 */
import type { BreakerState } from "../../../contract/records.ts";
import type { AgentFit } from "../queue-rules.ts";
import { weightOf, type Candidate } from "./balancing.ts";
import { breakerAllowance } from "../../../lib/breaker.ts";
import type { FitRow } from "./rows.ts";
import type { Holding, Resources } from "../allocation.ts";

/** `free`: the agent's resources not allocated to the tasks it holds (allocation.ts). */
export type PushCandidate = Candidate & { credits: number; room: number; row: FitRow; free: Resources };

/** What each of these agents holds (allocation.ts `holdings`), in one query. */
export type Holdings = (agents: readonly { agentId: string; resources: Resources }[]) => Map<string, Holding>;

/**
 * The push candidates among the connected agents: the agents holding credits (a partial index), and the tasks in
 * flight of those. Only the columns a round needs are read, and the reported load is taken out of its JSON by
 * SQLite.
 */
export function pushCandidates(sql: SqlStorage, connected: ReadonlySet<string>, holdings: Holdings): PushCandidate[] {
  const rows = sql
    .exec<FitRow & { max_concurrency: number; breaker: BreakerState; credits: number; latency_ewma_ms: number | null; current_load: number | null }>(
      `SELECT agent_id, tenant, capabilities, cpu, memory_mb, gpu, max_concurrency, breaker, credits, latency_ewma_ms,
         load ->> '$.currentLoad' AS current_load
       FROM agents WHERE credits > 0 AND state = 'running'`,
    )
    .toArray()
    .filter((r) => connected.has(r.agent_id));
  const held = holdings(rows.map((r) => ({ agentId: r.agent_id, resources: { cpu: r.cpu, memoryMb: r.memory_mb, gpu: r.gpu } })));
  const out: PushCandidate[] = [];
  for (const row of rows) {
    const holding = held.get(row.agent_id)!;
    const inFlight = holding.count;
    const room = Math.min(row.max_concurrency - inFlight, breakerAllowance(row.breaker, inFlight));
    if (room <= 0) continue;
    out.push({
      agentId: row.agent_id,
      inFlight,
      maxConcurrency: row.max_concurrency,
      weight: weightOf({ cpu: row.cpu }),
      currentLoad: row.current_load ?? 0,
      latencyMs: row.latency_ewma_ms,
      credits: row.credits,
      room,
      row,
      free: holding.free,
    });
  }
  return out;
}

/** Capabilities as stored (JSON text) to their parsed form: a fleet has few distinct sets. */
export class FitReader {
  private readonly parsed = new Map<string, readonly string[]>();

  fit(row: FitRow): AgentFit & { agentId: string } {
    let capabilities = this.parsed.get(row.capabilities);
    if (!capabilities) {
      if (this.parsed.size >= 1_000) this.parsed.clear();
      capabilities = Object.freeze(JSON.parse(row.capabilities) as string[]);
      this.parsed.set(row.capabilities, capabilities);
    }
    return { agentId: row.agent_id, tenant: row.tenant, capabilities, resources: { cpu: row.cpu, memoryMb: row.memory_mb, gpu: row.gpu } };
  }
}
