// Causal context of the dotted CRDTs (OR-Set, OR-Map): which dots a replica has seen, as a version vector plus
// a cloud of dots beyond it. Kept compact: the version vector absorbs every contiguous run.
import { ByteReader, ByteWriter, checkReplica } from "./bytes.js";
import { CrdtError, CrdtErrorCode } from "./errors.js";
import { MAX_SAFE } from "./format.js";
import { readVersionVector } from "./vclock.js";

/** One event: the `counter`-th event of `replica`. */
export interface Dot {
  readonly replica: number;
  readonly counter: number;
}

export function compareDots(a: Dot, b: Dot): number {
  return a.replica - b.replica || a.counter - b.counter;
}

export class CausalContext {
  /** replica -> the counter up to which every dot has been seen (> 0) */
  readonly vv = new Map<number, number>();
  /** replica -> seen counters above vv + 1 */
  readonly cloud = new Map<number, Set<number>>();

  contains(replica: number, counter: number): boolean {
    return counter <= (this.vv.get(replica) ?? 0) || (this.cloud.get(replica)?.has(counter) ?? false);
  }

  /** The largest counter of `replica` seen. */
  max(replica: number): number {
    let best = this.vv.get(replica) ?? 0;
    for (const c of this.cloud.get(replica) ?? []) if (c > best) best = c;
    return best;
  }

  /** The next dot of `replica`: one above everything of it seen. */
  next(replica: number): Dot {
    checkReplica(replica);
    const counter = this.max(replica) + 1;
    if (counter > MAX_SAFE) throw new CrdtError(CrdtErrorCode.OVERFLOW);
    return { replica, counter };
  }

  /** Records a dot, absorbing the cloud into the version vector where it becomes contiguous. */
  add(replica: number, counter: number): void {
    let v = this.vv.get(replica) ?? 0;
    if (counter <= v) return;
    const cloud = this.cloud.get(replica);
    if (counter !== v + 1) {
      if (cloud) cloud.add(counter);
      else this.cloud.set(replica, new Set([counter]));
      return;
    }
    v = counter;
    if (cloud) {
      while (cloud.delete(v + 1)) v++;
      if (cloud.size === 0) this.cloud.delete(replica);
    }
    this.vv.set(replica, v);
  }

  static ofDots(dots: Iterable<Dot>): CausalContext {
    const c = new CausalContext();
    for (const d of [...dots].sort(compareDots)) c.add(d.replica, d.counter);
    return c;
  }

  clone(): CausalContext {
    const c = new CausalContext();
    for (const [r, v] of this.vv) c.vv.set(r, v);
    for (const [r, s] of this.cloud) c.cloud.set(r, new Set(s));
    return c;
  }

  /** The cloud as sorted dots. */
  cloudDots(): Dot[] {
    const dots: Dot[] = [];
    for (const [replica, s] of this.cloud) for (const counter of s) dots.push({ replica, counter });
    return dots.sort(compareDots);
  }

  write(w: ByteWriter): void {
    const vv = [...this.vv].sort((a, b) => a[0] - b[0]);
    w.varint(vv.length);
    for (const [r, c] of vv) {
      w.varint(r);
      w.varint(c);
    }
    const cloud = this.cloudDots();
    w.varint(cloud.length);
    for (const d of cloud) {
      w.varint(d.replica);
      w.varint(d.counter);
    }
  }

  /** Reads and checks a context: strictly increasing, no zero counter, cloud dots at vv + 2 or above. */
  static read(r: ByteReader): CausalContext {
    const c = new CausalContext();
    for (const [replica, counter] of readVersionVector(r)) c.vv.set(replica, counter);
    const m = r.count();
    let prevReplica = -1;
    let prevCounter = 0;
    for (let i = 0; i < m; i++) {
      const at = r.pos;
      const replica = r.replica();
      const counterAt = r.pos;
      const counter = r.varint();
      if (replica < prevReplica || (replica === prevReplica && counter <= prevCounter)) r.fail(CrdtErrorCode.NOT_SORTED, at);
      if (counter === 0) r.fail(CrdtErrorCode.ZERO, counterAt);
      if (counter <= (c.vv.get(replica) ?? 0) + 1) r.fail(CrdtErrorCode.NOT_COMPACT, at);
      const s = c.cloud.get(replica);
      if (s) s.add(counter);
      else c.cloud.set(replica, new Set([counter]));
      prevReplica = replica;
      prevCounter = counter;
    }
    return c;
  }
}
