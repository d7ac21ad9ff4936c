import type { AgentState } from "../../../contract/records.ts";

/**
 * The agent lifecycle of the seed, exactly as API.md lists it. Registration walks pending -> initializing
 * -> running in one step; every other change must be one of these pairs.
 */
export const TRANSITIONS: Readonly<Record<AgentState, readonly AgentState[]>> = {
  pending: ["initializing"],
  initializing: ["running"],
  running: ["paused", "scaling", "terminating", "failed"],
  paused: ["running", "terminating", "failed"],
  scaling: ["running", "terminating", "failed"],
  failed: ["recovering", "terminating"],
  recovering: ["running", "terminating"],
  terminating: [],
};

export function canTransition(from: AgentState, to: AgentState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** States whose agents hold their leases and count as alive; a missed heartbeat moves them to failed. */
export function isLive(state: AgentState): boolean {
  return state === "running" || state === "paused" || state === "scaling";
}

/** Only running agents receive tasks. */
export function acceptsWork(state: AgentState): boolean {
  return state === "running";
}
