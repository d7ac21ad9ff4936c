// OR-Set: an add-wins observed-remove set with a causal context (delta-state form). A removal leaves no
// tombstone: only its dots in the context, which the version vector absorbs.
import { ByteReader, ByteWriter, type BytesLike, type Key, keyOf, keyToBytes } from "./bytes.js";
import { CausalContext, compareDots, type Dot } from "./context.js";
import { CrdtErrorCode } from "./errors.js";
import { CrdtType } from "./format.js";

export class ORSet {
  static readonly type = CrdtType.ORSet;
  readonly context: CausalContext;
  /** element (as a key) -> its dots, sorted */
  readonly entries: Map<Key, Dot[]>;

  constructor(context = new CausalContext(), entries = new Map<Key, Dot[]>()) {
    this.context = context;
    this.entries = entries;
  }

  /**
   * Adds an element at `replica`; returns the delta (mutates this state).
   *
   * @example
   * const queue = new ORSet(); const delta = queue.add("task-1", 7);
   */
  add(element: BytesLike, replica: number): ORSet {
    const key = keyOf(element);
    const dot = this.context.next(replica);
    const old = this.entries.get(key) ?? [];
    this.entries.set(key, [dot]);
    this.context.add(dot.replica, dot.counter);
    return new ORSet(CausalContext.ofDots([...old, dot]), new Map([[key, [dot]]]));
  }

  /** Removes an element (the adds this replica has seen); returns the delta. */
  remove(element: BytesLike): ORSet {
    const key = keyOf(element);
    const old = this.entries.get(key) ?? [];
    this.entries.delete(key);
    return new ORSet(CausalContext.ofDots(old));
  }

  has(element: BytesLike): boolean {
    return this.entries.has(keyOf(element));
  }

  get size(): number {
    return this.entries.size;
  }

  /** The elements as keys, in byte order. */
  keys(): Key[] {
    return [...this.entries.keys()].sort();
  }

  elements(): Uint8Array[] {
    return this.keys().map(keyToBytes);
  }

  writeBody(w: ByteWriter): void {
    this.context.write(w);
    writeDotted(w, this.entries, (w, dots) => {
      for (const d of dots) {
        w.varint(d.replica);
        w.varint(d.counter);
      }
    });
  }

  static readBody(r: ByteReader): ORSet {
    const context = CausalContext.read(r);
    const entries = readDotted(r, context, () => undefined, (d) => d);
    return new ORSet(context, entries);
  }
}

/** Writes the entries of an OR-Set or OR-Map: sorted keys, each with its sorted, non-empty dot list. */
export function writeDotted<D extends Dot>(w: ByteWriter, entries: Map<Key, D[]>, writeDots: (w: ByteWriter, dots: D[]) => void): void {
  const keys = [...entries.keys()].filter((k) => entries.get(k)!.length > 0).sort();
  w.varint(keys.length);
  for (const key of keys) {
    const dots = [...entries.get(key)!].sort(compareDots);
    w.key(key);
    w.varint(dots.length);
    writeDots(w, dots);
  }
}

/**
 * Reads the entries of an OR-Set or OR-Map, with the module's checks in its order: keys strictly increasing;
 * per key a non-empty dot list, strictly increasing, no zero counter, every dot in the context.
 */
export function readDotted<P, D extends Dot>(r: ByteReader, context: CausalContext, readPayload: (r: ByteReader) => P, make: (dot: Dot, payload: P) => D): Map<Key, D[]> {
  const entries = new Map<Key, D[]>();
  const n = r.count();
  let prev: Key | null = null;
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const key = r.key();
    if (prev !== null && prev >= key) r.fail(CrdtErrorCode.NOT_SORTED, at);
    prev = key;
    const countAt = r.pos;
    const d = r.count();
    if (d === 0) r.fail(CrdtErrorCode.ZERO, countAt);
    const dots: D[] = [];
    let prevReplica = -1;
    let prevCounter = 0;
    for (let k = 0; k < d; k++) {
      const dotAt = r.pos;
      const replica = r.replica();
      const counterAt = r.pos;
      const counter = r.varint();
      const payload = readPayload(r);
      if (replica < prevReplica || (replica === prevReplica && counter <= prevCounter)) r.fail(CrdtErrorCode.NOT_SORTED, dotAt);
      if (counter === 0) r.fail(CrdtErrorCode.ZERO, counterAt);
      if (!context.contains(replica, counter)) r.fail(CrdtErrorCode.DOT_NOT_IN_CONTEXT, dotAt);
      dots.push(make({ replica, counter }, payload));
      prevReplica = replica;
      prevCounter = counter;
    }
    entries.set(key, dots);
  }
  return entries;
}
