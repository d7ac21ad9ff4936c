/**
 * A push round: ready tasks leased to connected agents with credits, in one transaction. The pool's strategy
 * picks an agent among those with credits and room, it gets up to a small quantum of tasks, and so on until no
 * agent can take more or nothing fits; then every pick is leased in one statement. Resources are allocated
 * (allocation.ts): an agent's kind is keyed by what it has free, and an agent that some lane's requirements can
 * exhaust takes one task per pick and is keyed again by what is left, so a task that does not fit is never planned
 * for it and stays for an agent it fits.
 */
import type { LeasedTask, Strategy } from "../../contract/records.ts";
import type { AgentStore } from "./agents/index.ts";
import { pick, type RoundRobinState } from "./agents/balancing.ts";
import { minus } from "./allocation.ts";
import { fitKey, type AgentFit } from "./queue-rules.ts";
import { ReadyRound } from "./ready-round.ts";
import type { TaskStore } from "./tasks/index.ts";

/** Tasks pushed to one agent per pick: small enough to spread a burst, large enough to batch. */
export const DISPATCH_QUANTUM = 8;

/** Answers the leases per agent; each consumed a credit. */
export function pushRound(
  stores: { agents: AgentStore; tasks: TaskStore },
  strategy: Strategy,
  connected: ReadonlySet<string>,
  rr: RoundRobinState,
  now: number,
): Map<string, LeasedTask[]> {
  const { agents, tasks } = stores;
  // Read once; what changes during the round (in flight, credits, room) is tracked here, not re-read.
  const keyed = (base: AgentFit, free: AgentFit["resources"]) => {
    const fit = { ...base, resources: free };
    return { fit, key: fitKey(fit), bounded: tasks.bounded(fit) };
  };
  let candidates = agents.candidates(connected, (list) => tasks.holdings(list)).map((c) => ({ ...c, ...keyed(agents.fit(c.row), c.free) }));
  // The picks are planned over the ready tasks each kind of agent reads once, then leased in one statement.
  const fits = new Map(candidates.map((c) => [c.key, c.fit]));
  const budgets = new Map<string, number>();
  for (const c of candidates) budgets.set(c.key, (budgets.get(c.key) ?? 0) + Math.min(c.credits, c.room));
  const ready = new ReadyRound((key, n) => tasks.ready(fits.get(key)!, n));
  const plan: { seq: number; agentId: string }[] = [];
  while (candidates.length > 0) {
    const chosen = pick(strategy, candidates, rr)!;
    const want = chosen.bounded ? 1 : Math.min(chosen.credits, chosen.room, DISPATCH_QUANTUM);
    const seqs = ready.take(chosen.key, want, budgets.get(chosen.key)!);
    if (seqs.length < want) {
      // The lanes this agent accepts are empty now, and so they are for every agent that accepts the same
      // lanes: they all drop out of this round.
      candidates = candidates.filter((c) => c.key !== chosen.key);
      if (seqs.length === 0) continue;
    }
    chosen.credits -= seqs.length;
    chosen.room -= seqs.length;
    chosen.inFlight += seqs.length;
    for (const seq of seqs) plan.push({ seq, agentId: chosen.agentId });
    if (chosen.bounded) {
      // What the task takes is no longer free: the agent is of the kind of what is left.
      Object.assign(chosen, keyed(chosen.fit, minus(chosen.fit.resources, tasks.requiresOf(seqs[0]!))));
      fits.set(chosen.key, chosen.fit);
      budgets.set(chosen.key, (budgets.get(chosen.key) ?? 0) + Math.min(chosen.credits, chosen.room));
    }
    if (chosen.credits <= 0 || chosen.room <= 0) candidates = candidates.filter((c) => c !== chosen);
  }
  const out = new Map<string, LeasedTask[]>();
  tasks.leaseTo(plan, now).forEach((task, i) => {
    const agentId = plan[i]!.agentId;
    const list = out.get(agentId);
    if (list) list.push(task);
    else out.set(agentId, [task]);
  });
  for (const [agentId, leased] of out) agents.useCredits(agentId, leased.length);
  return out;
}
