// OR-Map of last-writer-wins registers: keys are added and removed like OR-Set elements; each write is an entry
// (dot, timestamp, value) and the value of a key is its entry with the largest (timestamp, replica, counter).
// Concurrent writes are all kept until a write that has seen them replaces them, which keeps merge a join.
import { ByteReader, ByteWriter, type BytesLike, type Key, keyOf, toBytes } from "./bytes.js";
import { CausalContext, type Dot } from "./context.js";
import { CrdtError, CrdtErrorCode } from "./errors.js";
import { CrdtType, MAX_SAFE } from "./format.js";
import { readDotted, writeDotted } from "./orset.js";

export interface MapEntry extends Dot {
  readonly timestamp: number;
  readonly value: Uint8Array;
}

/** Does entry `a` win over entry `b` (last writer wins)? */
export function wins(a: MapEntry, b: MapEntry): boolean {
  if (a.timestamp !== b.timestamp) return a.timestamp > b.timestamp;
  if (a.replica !== b.replica) return a.replica > b.replica;
  return a.counter > b.counter;
}

export class ORMap {
  static readonly type = CrdtType.ORMap;
  readonly context: CausalContext;
  /** key -> its entries, sorted by dot */
  readonly entries: Map<Key, MapEntry[]>;

  constructor(context = new CausalContext(), entries = new Map<Key, MapEntry[]>()) {
    this.context = context;
    this.entries = entries;
  }

  /**
   * Sets a key at `replica` with a timestamp (milliseconds since the epoch, say); returns the delta.
   *
   * @example
   * const mappings = new ORMap(); mappings.set("img-1", "post-9", Date.now(), 7);
   */
  set(key: BytesLike, value: BytesLike, timestamp: number, replica: number): ORMap {
    if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp > MAX_SAFE) throw new CrdtError(CrdtErrorCode.BAD_ARGUMENT);
    const k = keyOf(key);
    const dot = this.context.next(replica);
    const entry: MapEntry = { ...dot, timestamp, value: toBytes(value).slice() };
    const old = this.entries.get(k) ?? [];
    this.entries.set(k, [entry]);
    this.context.add(dot.replica, dot.counter);
    return new ORMap(CausalContext.ofDots([...old, dot]), new Map([[k, [entry]]]));
  }

  /** Removes a key (the writes this replica has seen); returns the delta. */
  remove(key: BytesLike): ORMap {
    const k = keyOf(key);
    const old = this.entries.get(k) ?? [];
    this.entries.delete(k);
    return new ORMap(CausalContext.ofDots(old));
  }

  /** The winning entry of a key. */
  entry(key: BytesLike): MapEntry | undefined {
    let best: MapEntry | undefined;
    for (const e of this.entries.get(keyOf(key)) ?? []) if (!best || wins(e, best)) best = e;
    return best;
  }

  get(key: BytesLike): Uint8Array | undefined {
    return this.entry(key)?.value;
  }

  getText(key: BytesLike): string | undefined {
    const v = this.get(key);
    return v === undefined ? undefined : new TextDecoder().decode(v);
  }

  has(key: BytesLike): boolean {
    return this.entries.has(keyOf(key));
  }

  get size(): number {
    return this.entries.size;
  }

  keys(): Key[] {
    return [...this.entries.keys()].sort();
  }

  writeBody(w: ByteWriter): void {
    this.context.write(w);
    writeDotted(w, this.entries, (w, entries) => {
      for (const e of entries) {
        w.varint(e.replica);
        w.varint(e.counter);
        w.varint(e.timestamp);
        w.bytesField(e.value);
      }
    });
  }

  static readBody(r: ByteReader): ORMap {
    const context = CausalContext.read(r);
    const entries = readDotted(
      r,
      context,
      (r) => ({ timestamp: r.varint(), value: r.bytesField() }),
      (dot, p): MapEntry => ({ replica: dot.replica, counter: dot.counter, timestamp: p.timestamp, value: p.value }),
    );
    return new ORMap(context, entries);
  }
}
