import type { AgentState, PoolConfig } from "../../../contract/records.ts";
import { isLive } from "./lifecycle.ts";

/**
 * Agent health, as pure rules: when an agent is next due for a look by the alarm, what the alarm then does, and
 * how a heartbeat moves a failed agent back. The coordinator's single alarm drives all of it, so detection does
 * not depend on some request happening to arrive.
 */

export interface HealthFacts {
  state: AgentState;
  lastSeenAt: number;
  breaker: "closed" | "open" | "half_open";
  breakerUntil: number | null;
}

type HealthConfig = Pick<PoolConfig, "heartbeatIntervalMs" | "missedHeartbeats" | "failedAgentTtlMs">;

/** When a live agent that stays silent is declared failed. */
export function failureDeadline(lastSeenAt: number, config: HealthConfig): number {
  return lastSeenAt + config.heartbeatIntervalMs * config.missedHeartbeats;
}

/** The next time the alarm must look at this agent, or null. */
export function agentTimer(agent: HealthFacts, config: HealthConfig): number | null {
  const candidates: number[] = [];
  if (isLive(agent.state)) candidates.push(failureDeadline(agent.lastSeenAt, config));
  if (agent.state === "failed" || agent.state === "recovering") candidates.push(agent.lastSeenAt + config.failedAgentTtlMs);
  if (agent.breaker === "open" && agent.breakerUntil !== null) candidates.push(agent.breakerUntil);
  return candidates.length === 0 ? null : Math.min(...candidates);
}

export type HealthAction = "fail" | "terminate" | "half_open";

/** What the alarm does to a due agent, in order. */
export function dueActions(agent: HealthFacts, now: number, config: HealthConfig): HealthAction[] {
  const actions: HealthAction[] = [];
  if (isLive(agent.state) && now >= failureDeadline(agent.lastSeenAt, config)) actions.push("fail");
  if ((agent.state === "failed" || agent.state === "recovering") && now >= agent.lastSeenAt + config.failedAgentTtlMs) actions.push("terminate");
  if (agent.breaker === "open" && agent.breakerUntil !== null && now >= agent.breakerUntil) actions.push("half_open");
  return actions;
}

/** A heartbeat brings a failed agent to recovering, and a recovering one back to running. */
export function stateAfterHeartbeat(state: AgentState): AgentState {
  if (state === "failed") return "recovering";
  if (state === "recovering") return "running";
  return state;
}
