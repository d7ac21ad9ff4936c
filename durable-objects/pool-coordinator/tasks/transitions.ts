/**
 * Every change of a task's status, in one table: how the task store moves a task, from where to where. The
 * statements that write a status (tasks/*.ts) note each move here ({@link TaskMoves.move}); the move is checked
 * against the table (a move it does not list is a bug and throws, rolling the transaction back), counted for
 * `status_counts`, and turned into the events the coordinator acts on.
 */
import type { Emit } from "../../../contract/events.ts";
import { isFinal, type TaskStatus } from "../../../contract/records.ts";
import type { StatusCountDeltas } from "./counts.ts";
import type { Gated, Gates } from "./gates.ts";

export const TASK_TRANSITIONS = {
  /** A new task: ready, waiting (delay, dependencies), or dead at once (a dependency is dead or cancelled). */
  submit: { from: [null], to: ["queued", "waiting", "dead"] },
  /** An agent takes it, with a fresh fencing token. */
  lease: { from: ["queued"], to: ["leased"] },
  /** The holder of the current lease reports success. */
  complete: { from: ["leased"], to: ["succeeded"] },
  /** An attempt failed (reported, lease expired, agent lost): backoff, back to the queue, or the dead letter queue. */
  fail_attempt: { from: ["leased"], to: ["waiting", "queued", "dead"] },
  /** A delay or backoff ended, or a dependency succeeded: ready once nothing is left to wait for. */
  wake: { from: ["waiting"], to: ["queued", "waiting"] },
  /** A dependency ended dead or cancelled: the task can never run. */
  dependency_failed: { from: ["waiting"], to: ["dead"] },
  cancel: { from: ["waiting", "queued", "leased"], to: ["cancelled"] },
  /** Out of the dead letter queue, attempts reset. */
  redrive: { from: ["dead"], to: ["queued", "waiting"] },
  /** Its concurrency or rate key has room again (gates.ts): a held task is ready. */
  release: { from: ["waiting"], to: ["queued"] },
  /** A debounced submit of the same key: a task never leased waits again, its payload replaced. */
  debounce: { from: ["waiting", "queued"], to: ["waiting"] },
  /** Finished and past retention: removed. */
  purge: { from: ["succeeded", "dead", "cancelled"], to: [null] },
  /** A draining shard hands a task that is not leased to another shard, which takes it as it was. */
  move_out: { from: ["queued", "waiting"], to: [null] },
  move_in: { from: [null], to: ["queued", "waiting"] },
} as const satisfies Record<string, { from: readonly (TaskStatus | null)[]; to: readonly (TaskStatus | null)[] }>;

export type TaskTransition = keyof typeof TASK_TRANSITIONS;

export function allows(transition: TaskTransition, from: TaskStatus | null, to: TaskStatus | null): boolean {
  const rule: { from: readonly (TaskStatus | null)[]; to: readonly (TaskStatus | null)[] } = TASK_TRANSITIONS[transition];
  return rule.from.includes(from) && rule.to.includes(to);
}

/** What a move needs to know of the task (a row of the tasks table has it all). */
export interface Moving extends Gated {
  id: string;
  tenant: string;
  /** The agent holding the lease, when the task leaves `leased`. */
  agent_id: string | null;
  /** When the task leaves `leased`: its lane, when the lease began, and its expiry (null: it cannot have passed). */
  lane?: number;
  leased_at?: number | null;
  lease_expires_at?: number | null;
}

/** Notes the moves of one transaction: counts and events. */
export class TaskMoves {
  constructor(
    private readonly counts: StatusCountDeltas,
    private readonly emit: Emit,
    /** A lease ended (the task left `leased`): usage accounting (usage/ledger.ts). */
    private readonly leaseEnded: (task: Moving) => void = () => {},
    /** Concurrency and rate keys: a task written `queued` without room is held instead (gates.ts). */
    private readonly gates?: Gates,
  ) {}

  /**
   * Notes a move the caller wrote. Answers where the task is now: `waiting` instead of `queued` when a gate of
   * its keys held it (the caller's record of it is then out of date).
   */
  move(transition: TaskTransition, task: Moving, from: TaskStatus | null, wrote: TaskStatus | null): TaskStatus | null {
    if (!allows(transition, from, wrote)) throw new Error(`task ${task.id}: ${transition} does not go from ${from} to ${wrote}`);
    const to = wrote === "queued" && transition !== "release" && this.gates && !this.gates.admit(task) ? "waiting" : wrote;
    this.counts.moved(task.tenant, from, to);
    if (from === "leased" && task.agent_id !== null) this.emit({ type: "lease_released", agentId: task.agent_id });
    if (from === "leased") this.leaseEnded(task);
    if (from !== to) {
      if (to === "queued") this.emit({ type: "tasks_queued", count: 1 });
      else if (to !== null && isFinal(to)) this.emit({ type: "task_finished", id: task.id, tenant: task.tenant, status: to });
    }
    this.gates?.moved(task, from, to);
    return to;
  }
}
