import { isFinal, type Requirements, type TaskStatus } from "../../contract/records.ts";
import { retryDelayMs, type BackoffPolicy, DEFAULT_BACKOFF } from "./backoff.ts";

export { isFinal } from "../../contract/records.ts";

/**
 * The queue's rules as pure functions: what happens to a task after a failed attempt, what can be cancelled,
 * which agent may take which lane, and the order tasks are served in. The store applies them; tests check
 * them without storage.
 */

/** Cancel applies to anything not yet final, including a leased task (its lease is revoked). */
export function canCancel(status: TaskStatus): boolean {
  return !isFinal(status);
}

export type FailureCause = "failed" | "expired" | "agent_lost";

export interface FailedAttempt {
  attempts: number;
  maxAttempts: number;
  retryable: boolean;
  cause: FailureCause;
  now: number;
  random01: number;
  backoff?: BackoffPolicy;
}

export type AttemptOutcome = { status: "dead" } | { status: "queued" } | { status: "waiting"; runAfter: number };

/**
 * Where a task goes after a failed attempt (API.md, "Lease rules"): dead when the attempts are used up or the
 * failure is not retryable; back to the queue at once when its agent was lost or deleted; otherwise waiting
 * out an exponential backoff.
 */
export function afterFailedAttempt({ attempts, maxAttempts, retryable, cause, now, random01, backoff = DEFAULT_BACKOFF }: FailedAttempt): AttemptOutcome {
  if (!retryable || attempts >= maxAttempts) return { status: "dead" };
  if (cause === "agent_lost") return { status: "queued" };
  return { status: "waiting", runAfter: now + retryDelayMs(attempts, random01, backoff) };
}

/** A lane groups queued tasks that one agent either can or cannot take: same tenant, same requirements. */
export interface Lane {
  id: number;
  tenant: string;
  requires: Requirements;
}

export interface AgentFit {
  /** null: a shared-fleet agent serving every tenant. */
  tenant: string | null;
  capabilities: readonly string[];
  resources: { cpu: number; memoryMb: number; gpu: number };
}

/** Whether an agent may take the tasks of a lane: tenant, every required capability, enough resources. */
export function laneAccepts(lane: Lane, agent: AgentFit): boolean {
  if (agent.tenant !== null && agent.tenant !== lane.tenant) return false;
  const { requires } = lane;
  if (requires.cpu > agent.resources.cpu || requires.memoryMb > agent.resources.memoryMb || requires.gpu > agent.resources.gpu) {
    return false;
  }
  return requires.capabilities.every((cap) => agent.capabilities.includes(cap));
}

/** Agents with equal keys accept exactly the same lanes (what {@link laneAccepts} reads, in canonical form). */
export function fitKey(agent: AgentFit): string {
  const { cpu, memoryMb, gpu } = agent.resources;
  return JSON.stringify([agent.tenant, [...new Set(agent.capabilities)].sort(), cpu, memoryMb, gpu]);
}

/** The canonical form of requirements, so equal requirements share one lane. */
export function normalizeRequirements(requires: Requirements): Requirements {
  const capabilities = [...new Set(requires.capabilities)].sort();
  return { capabilities, cpu: requires.cpu, memoryMb: requires.memoryMb, gpu: requires.gpu };
}

export function laneKey(tenant: string, requires: Requirements): string {
  const r = normalizeRequirements(requires);
  return JSON.stringify([tenant, r.capabilities, r.cpu, r.memoryMb, r.gpu]);
}

export interface ReadyRef {
  seq: number;
  priority: number;
}

/** Serving order: higher priority first, then first in, first out. */
export function compareReady(a: ReadyRef, b: ReadyRef): number {
  return b.priority - a.priority || a.seq - b.seq;
}

/** The first `n` of several lanes' heads, each already in serving order. */
export function mergeReady<T extends ReadyRef>(heads: readonly (readonly T[])[], n: number): T[] {
  return heads.flat().sort(compareReady).slice(0, n);
}
