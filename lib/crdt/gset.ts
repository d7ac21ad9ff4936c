// G-Set: a grow-only set of byte strings.
import { ByteReader, ByteWriter, type BytesLike, type Key, keyOf, keyToBytes } from "./bytes.js";
import { CrdtErrorCode } from "./errors.js";
import { CrdtType } from "./format.js";

export class GSet {
  static readonly type = CrdtType.GSet;
  readonly items: Set<Key>;

  constructor(items = new Set<Key>()) {
    this.items = items;
  }

  /** Adds an element; returns the delta (the element alone). */
  add(element: BytesLike): GSet {
    const key = keyOf(element);
    this.items.add(key);
    return new GSet(new Set([key]));
  }

  has(element: BytesLike): boolean {
    return this.items.has(keyOf(element));
  }

  get size(): number {
    return this.items.size;
  }

  keys(): Key[] {
    return [...this.items].sort();
  }

  elements(): Uint8Array[] {
    return this.keys().map(keyToBytes);
  }

  writeBody(w: ByteWriter): void {
    const keys = this.keys();
    w.varint(keys.length);
    for (const k of keys) w.key(k);
  }

  static readBody(r: ByteReader): GSet {
    const items = new Set<Key>();
    const n = r.count();
    let prev: Key | null = null;
    for (let i = 0; i < n; i++) {
      const at = r.pos;
      const key = r.key();
      if (prev !== null && prev >= key) r.fail(CrdtErrorCode.NOT_SORTED, at);
      items.add(key);
      prev = key;
    }
    return new GSet(items);
  }
}
