// Readers and writers of the format's fields (docs/crdt-format.md), and the byte strings used as keys.
// The reader makes exactly the checks of the WebAssembly module's, in the same order, with the same offsets.
import { CrdtError, CrdtErrorCode } from "./errors.js";
import { MAX_REPLICA, MAX_SAFE } from "./format.js";

/**
 * Elements and keys are bytes. In memory they are "binary strings": one UTF-16 code unit (0-255) per byte, which
 * makes them Map keys and sorts them in byte order with `<`.
 */
export type Key = string;

/** What the API accepts as an element, key or value: bytes, or text (encoded as UTF-8). */
export type BytesLike = Uint8Array | string;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Replica ids are whole numbers in [0, 2^32 - 1]. */
export function checkReplica(replica: number): void {
  if (!Number.isInteger(replica) || replica < 0 || replica > MAX_REPLICA) throw new CrdtError(CrdtErrorCode.BAD_ARGUMENT);
}

export function toBytes(x: BytesLike): Uint8Array {
  return typeof x === "string" ? utf8.encode(x) : x;
}

export function keyOf(x: BytesLike): Key {
  const bytes = toBytes(x);
  return bytesToKey(bytes, 0, bytes.length);
}

export function bytesToKey(bytes: Uint8Array, start: number, end: number): Key {
  const n = end - start;
  if (n <= 64) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
    return s;
  }
  let s = "";
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  }
  return s;
}

export function keyToBytes(key: Key): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) out[i] = key.charCodeAt(i);
  return out;
}

/** The text of a key or value that holds UTF-8 (throws on invalid UTF-8). */
export function keyToText(key: Key): string {
  return utf8Strict.decode(keyToBytes(key));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Byte order: memcmp, then the length. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export class ByteReader {
  readonly bytes: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.pos = 0;
    this.end = bytes.length;
  }

  fail(code: CrdtErrorCode, at: number): never {
    throw new CrdtError(code, at, 0);
  }

  remaining(): number {
    return this.end - this.pos;
  }

  /** An unsigned LEB128 varint: minimal, at most 10 bytes, at most 2^53 - 1. */
  varint(): number {
    const bytes = this.bytes;
    const start = this.pos;
    let p = start;
    if (p < this.end && bytes[p]! < 0x80) {
      this.pos = p + 1;
      return bytes[p]!;
    }
    let result = 0;
    let shift = 0;
    for (;;) {
      if (p >= this.end) this.fail(CrdtErrorCode.TRUNCATED, start);
      const b = bytes[p++]!;
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) {
        if (b === 0 && shift > 0) this.fail(CrdtErrorCode.OVERLONG_VARINT, start);
        break;
      }
      shift += 7;
      if (shift > 63) this.fail(CrdtErrorCode.OVERLONG_VARINT, start);
    }
    this.pos = p;
    // Exact below 2^53; a larger value rounds to at least 2^53, so the test is exact too.
    if (result > MAX_SAFE) this.fail(CrdtErrorCode.OUT_OF_RANGE, start);
    return result;
  }

  replica(): number {
    const start = this.pos;
    const v = this.varint();
    if (v > MAX_REPLICA) this.fail(CrdtErrorCode.OUT_OF_RANGE, start);
    return v;
  }

  /** A count or a length: never more than the bytes that remain after it. */
  count(): number {
    const start = this.pos;
    const v = this.varint();
    if (v > this.end - this.pos) this.fail(CrdtErrorCode.TRUNCATED, start);
    return v;
  }

  /** A byte string, as a key. */
  key(): Key {
    const len = this.count();
    const start = this.pos;
    this.pos += len;
    return bytesToKey(this.bytes, start, start + len);
  }

  /** A byte string, as bytes (a copy). */
  bytesField(): Uint8Array {
    const len = this.count();
    const start = this.pos;
    this.pos += len;
    return this.bytes.slice(start, start + len);
  }
}

export class ByteWriter {
  private buf: Uint8Array;
  pos = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  varint(v: number): void {
    this.room(10);
    const buf = this.buf;
    while (v >= 0x80) {
      buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[this.pos++] = v;
  }

  /** A byte string given as a key. */
  key(key: Key): void {
    const n = key.length;
    this.varint(n);
    this.room(n);
    const buf = this.buf;
    for (let i = 0; i < n; i++) buf[this.pos++] = key.charCodeAt(i);
  }

  bytesField(bytes: Uint8Array): void {
    this.varint(bytes.length);
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}
