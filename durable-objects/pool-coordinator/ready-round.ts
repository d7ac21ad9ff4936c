import type { ReadyRef } from "./queue-rules.ts";

/** Most ready tasks one read brings in for one kind of agent. */
export const READY_PAGE = 512;

interface KindState {
  refs: ReadyRef[];
  pos: number;
  /** The read returned fewer than it asked for: nothing more of this kind is ready. */
  complete: boolean;
}

/**
 * The ready tasks of one dispatch round, per kind of agent (agents that accept the same lanes). Each kind's
 * heads are read once, in serving order, and handed out a quantum at a time; nothing is written until the round
 * leases everything it handed out in one statement. Kinds may share lanes, so a task one kind took is skipped by
 * the others; a kind reads again (past everything the round took) only when what it read ran out while more may
 * be ready.
 *
 * `read(key, n)` answers the first `n` ready tasks of a kind in serving order, as storage holds them: the round
 * leases nothing before it ends, so what it took still reads as ready.
 */
export class ReadyRound {
  private readonly kinds = new Map<string, KindState>();
  private readonly taken = new Set<number>();

  constructor(private readonly read: (key: string, n: number) => ReadyRef[]) {}

  /** Up to `n` tasks for an agent of kind `key`; `budget` is what that kind's agents may take in the round. */
  take(key: string, n: number, budget: number): number[] {
    const out: number[] = [];
    if (n <= 0) return out;
    let kind = this.kinds.get(key) ?? this.fetch(key, Math.min(Math.max(budget, n), READY_PAGE));
    for (;;) {
      while (out.length < n && kind.pos < kind.refs.length) {
        const { seq } = kind.refs[kind.pos++]!;
        if (this.taken.has(seq)) continue;
        this.taken.add(seq);
        out.push(seq);
      }
      if (out.length === n || kind.complete) return out;
      // Read again, past all this round took: at least `n` of the tasks read are then not taken, if so many wait.
      kind = this.fetch(key, this.taken.size + Math.min(Math.max(budget, n), READY_PAGE));
    }
  }

  /** How many tasks the round handed out. */
  get size(): number {
    return this.taken.size;
  }

  private fetch(key: string, limit: number): KindState {
    const refs = this.read(key, limit);
    const kind = { refs, pos: 0, complete: refs.length < limit };
    this.kinds.set(key, kind);
    return kind;
  }
}
