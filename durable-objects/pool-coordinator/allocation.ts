/**
 * Resource allocation (docs/resources.md): the `requires` (cpu, memoryMb, gpu) of the tasks an agent holds add up
 * to at most its `resources`. What an agent holds is read from its leased rows (the `tasks_by_agent` index), in
 * one query per round or poll whatever the number of agents, so the sums cannot drift from the leases; the check
 * per candidate task is then a comparison of three numbers.
 */
import type { Requirements } from "../../contract/records.ts";
import type { LaneStore } from "./lanes.ts";
import type { Lane } from "./queue-rules.ts";

export interface Resources {
  cpu: number;
  memoryMb: number;
  gpu: number;
}

/** Whether tasks of these requirements take any of an agent's resources (most need none: they always fit). */
export function needsResources(requires: Requirements): boolean {
  return requires.cpu > 0 || requires.memoryMb > 0 || requires.gpu > 0;
}

export function fitsIn(requires: Requirements, free: Resources): boolean {
  return requires.cpu <= free.cpu && requires.memoryMb <= free.memoryMb && requires.gpu <= free.gpu;
}

export function minus(free: Resources, requires: Requirements): Resources {
  return { cpu: free.cpu - requires.cpu, memoryMb: free.memoryMb - requires.memoryMb, gpu: free.gpu - requires.gpu };
}

/** Whether any of these lanes takes resources: when none does, allocation cannot refuse a task. */
export function anyNeedsResources(lanes: readonly Lane[]): boolean {
  return lanes.some((lane) => needsResources(lane.requires));
}

export interface Holding {
  /** Tasks the agent holds. */
  count: number;
  /** Its resources not allocated to the tasks it holds. */
  free: Resources;
}

/** What each of these agents holds and has free, in one query. */
export function holdings(sql: SqlStorage, lanes: LaneStore, agents: readonly { agentId: string; resources: Resources }[]): Map<string, Holding> {
  const out = new Map<string, Holding>();
  for (const a of agents) out.set(a.agentId, { count: 0, free: { ...a.resources } });
  if (agents.length === 0) return out;
  for (const r of sql.exec<{ agent_id: string; lane: number; n: number }>(
    "SELECT agent_id, lane, count(*) AS n FROM tasks WHERE status = 'leased' AND agent_id IN (SELECT value FROM json_each(?)) GROUP BY agent_id, lane",
    JSON.stringify(agents.map((a) => a.agentId)),
  )) {
    const h = out.get(r.agent_id)!;
    const { cpu, memoryMb, gpu } = lanes.get(r.lane).requires;
    h.count += r.n;
    h.free = { cpu: h.free.cpu - cpu * r.n, memoryMb: h.free.memoryMb - memoryMb * r.n, gpu: h.free.gpu - gpu * r.n };
  }
  return out;
}
