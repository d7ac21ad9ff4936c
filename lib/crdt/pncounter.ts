// PN-Counter: per replica, the total it has added (p) and subtracted (n); value = sum of p - sum of n.
import { ByteReader, ByteWriter, checkReplica } from "./bytes.js";
import { CrdtError, CrdtErrorCode } from "./errors.js";
import { CrdtType, MAX_SAFE } from "./format.js";

export interface CounterEntry {
  readonly p: number;
  readonly n: number;
}

export class PNCounter {
  static readonly type = CrdtType.PNCounter;
  /** replica -> its entry (never p = n = 0) */
  readonly entries: Map<number, CounterEntry>;

  constructor(entries = new Map<number, CounterEntry>()) {
    this.entries = entries;
  }

  /**
   * Adds `amount` (a nonzero whole number; negative subtracts) at `replica`; returns the delta (that replica's
   * new entry).
   *
   * @example
   * const loads = new PNCounter(); loads.add(7, 3); loads.add(7, -1); loads.value(); // 2
   */
  add(replica: number, amount: number): PNCounter {
    checkReplica(replica);
    if (!Number.isSafeInteger(amount) || amount === 0) throw new CrdtError(CrdtErrorCode.BAD_ARGUMENT);
    const old = this.entries.get(replica) ?? { p: 0, n: 0 };
    const by = Math.abs(amount);
    if ((amount > 0 ? old.p : old.n) > MAX_SAFE - by) throw new CrdtError(CrdtErrorCode.OVERFLOW);
    const next = amount > 0 ? { p: old.p + by, n: old.n } : { p: old.p, n: old.n + by };
    this.entries.set(replica, next);
    return new PNCounter(new Map([[replica, next]]));
  }

  increment(replica: number, by = 1): PNCounter {
    return this.add(replica, by);
  }

  decrement(replica: number, by = 1): PNCounter {
    return this.add(replica, -by);
  }

  value(): number {
    let v = 0;
    for (const e of this.entries.values()) v += e.p - e.n;
    return v;
  }

  writeBody(w: ByteWriter): void {
    const entries = [...this.entries].filter(([, e]) => e.p !== 0 || e.n !== 0).sort((a, b) => a[0] - b[0]);
    w.varint(entries.length);
    for (const [r, e] of entries) {
      w.varint(r);
      w.varint(e.p);
      w.varint(e.n);
    }
  }

  static readBody(r: ByteReader): PNCounter {
    const entries = new Map<number, CounterEntry>();
    const count = r.count();
    let prev = -1;
    for (let i = 0; i < count; i++) {
      const at = r.pos;
      const replica = r.replica();
      const p = r.varint();
      const n = r.varint();
      if (replica <= prev) r.fail(CrdtErrorCode.NOT_SORTED, at);
      if (p === 0 && n === 0) r.fail(CrdtErrorCode.ZERO, at);
      entries.set(replica, { p, n });
      prev = replica;
    }
    return new PNCounter(entries);
  }
}
