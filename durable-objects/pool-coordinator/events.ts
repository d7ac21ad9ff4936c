/**
 * The one place where {@link PoolEvent}s are interpreted. The stores emit them during a change; this class folds
 * them into what the change requires of the coordinator, in three steps: inside the transaction (terminating
 * agents that gave up their last lease leave, and ready work is pushed to connected agents, so the change and its
 * leases commit together), right after the commit (the committed leases are sent), and once the operation is done
 * (long polls retry, result waiters wake). A change that rolls back is discarded with its events; those of
 * earlier changes stay.
 */
import type { PoolEvent } from "../../contract/events.ts";
import type { LeasedTask } from "../../contract/records.ts";

/** What the interpretation acts on. */
export interface EventTargets {
  /** Inside the transaction: removes terminating agents among these that hold nothing any more. */
  reapTerminating(agentIds: ReadonlySet<string>): void;
  /** Inside the transaction: leases ready tasks to connected agents with credits; null when nobody got any. */
  pushRound(): Map<string, LeasedTask[]> | null;
  /** Right after the commit: sends the leases the push round committed. */
  send(pushed: Map<string, LeasedTask[]>): void;
  /** Once the operation is done: long-polling agents try to lease again. */
  pokeLeaseWaiters(): void;
  /** Once the operation is done: callers waiting for these tasks' results wake. */
  signalFinished(ids: readonly string[]): void;
}

class Gathered {
  queued = 0;
  finished: string[] = [];
  released = new Set<string>();
  agentsChanged = false;

  get mayHaveWork(): boolean {
    return this.queued > 0 || this.released.size > 0 || this.agentsChanged;
  }

  add(event: PoolEvent): void {
    switch (event.type) {
      case "tasks_queued":
        this.queued += event.count;
        return;
      case "task_finished":
        this.finished.push(event.id);
        return;
      case "lease_released":
        this.released.add(event.agentId);
        return;
      case "agent_changed":
        this.agentsChanged = true;
        return;
    }
  }

  merge(other: Gathered): void {
    this.queued += other.queued;
    for (const id of other.finished) this.finished.push(id);
    for (const agentId of other.released) this.released.add(agentId);
    this.agentsChanged ||= other.agentsChanged;
  }
}

export class PoolEvents {
  /** Emitted by the open transaction. */
  private open = new Gathered();
  /** Committed and not yet acted on once the operation is done. */
  private done = new Gathered();
  private pushed: Map<string, LeasedTask[]> | null = null;

  constructor(private readonly targets: EventTargets) {}

  /** The sink the stores emit into. */
  readonly emit = (event: PoolEvent): void => this.open.add(event);

  /** The end of a change, still inside its transaction. */
  beforeCommit(): void {
    if (this.open.released.size > 0) this.targets.reapTerminating(this.open.released);
    this.pushed = this.open.mayHaveWork || this.done.mayHaveWork ? this.targets.pushRound() : null;
  }

  /** The transaction committed. */
  committed(): void {
    this.done.merge(this.open);
    this.open = new Gathered();
    const pushed = this.pushed;
    this.pushed = null;
    if (pushed) this.targets.send(pushed);
  }

  /** The transaction rolled back: what it emitted never happened. */
  rolledBack(): void {
    this.open = new Gathered();
    this.pushed = null;
  }

  /** The operation is done (its commits made): wake whoever waits on what they changed. */
  settle(): void {
    const done = this.done;
    if (!done.mayHaveWork && done.finished.length === 0) return;
    this.done = new Gathered();
    if (done.finished.length > 0) this.targets.signalFinished(done.finished);
    if (done.mayHaveWork) this.targets.pokeLeaseWaiters();
  }
}
