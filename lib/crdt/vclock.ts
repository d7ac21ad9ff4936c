// Vector clock: replica -> the number of its events seen.
import { ByteReader, ByteWriter, checkReplica } from "./bytes.js";
import { CrdtError, CrdtErrorCode } from "./errors.js";
import { type ClockOrder, CrdtType, MAX_SAFE } from "./format.js";

export class VectorClock {
  static readonly type = CrdtType.VectorClock;
  /** replica -> counter (> 0) */
  readonly entries: Map<number, number>;

  constructor(entries = new Map<number, number>()) {
    this.entries = entries;
  }

  get(replica: number): number {
    return this.entries.get(replica) ?? 0;
  }

  /** Counts one event of `replica`; returns the delta (that replica's entry). */
  tick(replica: number): VectorClock {
    checkReplica(replica);
    const c = this.get(replica);
    if (c >= MAX_SAFE) throw new CrdtError(CrdtErrorCode.OVERFLOW);
    this.entries.set(replica, c + 1);
    return new VectorClock(new Map([[replica, c + 1]]));
  }

  /** How this clock compares with another: equal, before, after or concurrent. */
  compare(other: VectorClock): ClockOrder {
    let less = false;
    let greater = false;
    for (const [r, c] of this.entries) {
      const o = other.get(r);
      if (c < o) less = true;
      else if (c > o) greater = true;
    }
    for (const [r, o] of other.entries) if (!this.entries.has(r) && o > 0) less = true;
    return less && greater ? "concurrent" : less ? "before" : greater ? "after" : "equal";
  }

  writeBody(w: ByteWriter): void {
    const entries = [...this.entries].filter(([, c]) => c > 0).sort((a, b) => a[0] - b[0]);
    w.varint(entries.length);
    for (const [r, c] of entries) {
      w.varint(r);
      w.varint(c);
    }
  }

  static readBody(r: ByteReader): VectorClock {
    return new VectorClock(readVersionVector(r));
  }
}

/** Reads a version vector (a clock body, or a causal context's): replicas strictly increasing, no zero counter. */
export function readVersionVector(r: ByteReader): Map<number, number> {
  const entries = new Map<number, number>();
  const n = r.count();
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const replica = r.replica();
    const counterAt = r.pos;
    const counter = r.varint();
    if (replica <= prev) r.fail(CrdtErrorCode.NOT_SORTED, at);
    if (counter === 0) r.fail(CrdtErrorCode.ZERO, counterAt);
    entries.set(replica, counter);
    prev = replica;
  }
  return entries;
}
