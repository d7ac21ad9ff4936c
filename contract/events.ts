/**
 * What a pool coordinator's change did that matters beyond the change itself, as a closed union. The stores emit
 * these inside the transaction; the coordinator interprets them in exactly one place
 * (durable-objects/pool-coordinator/events.ts) once the transaction has committed: wake long polls, signal result
 * waiters, push work to connected agents, let terminating agents go. A rolled-back transaction's events are
 * dropped with it.
 */
import type { FinalStatus } from "./records.ts";

export type PoolEvent =
  /** Tasks became ready to lease (submitted, delay or backoff over, dependencies done, redriven). */
  | { type: "tasks_queued"; count: number }
  /** A task reached a final status. */
  | { type: "task_finished"; id: string; tenant: string; status: FinalStatus }
  /** An agent gave up a lease (settled, failed, expired, lost): it has room again, or may now leave. */
  | { type: "lease_released"; agentId: string }
  /** An agent registered, changed state or breaker, or gave credits: it may now take work. */
  | { type: "agent_changed"; agentId: string };

export type PoolEventType = PoolEvent["type"];

/** The events a change emits, as the stores see the sink. */
export type Emit = (event: PoolEvent) => void;
