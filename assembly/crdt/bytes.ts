// Readers and writers of the format's fields (docs/crdt-format.md): varints, replicas, counts, byte strings.
// A reader never reads past its end: every length and count is checked against the bytes that remain before
// anything is read or allocated. On the first error the reader jumps to its end, so loops stop at once.
import { E_INTERNAL, E_OUT_OF_RANGE, E_OVERLONG_VARINT, E_TRUNCATED } from "./errors";
import { errCode, setError } from "./state";

export const MAX_SAFE: u64 = 0x1F_FFFF_FFFF_FFFF; // 2^53 - 1
export const MAX_REPLICA: u64 = 0xFFFF_FFFF;

@unmanaged
export class Reader {
  base: usize; // the first byte of the input: offsets in errors are relative to it
  pos: usize;
  end: usize;
  input: i32; // 0 or 1: which input of a merge
}

/** The readers, in static memory: the two inputs of a merge, and a third for the operations. */
export const READER_A = changetype<Reader>(memory.data(16));
export const READER_B = changetype<Reader>(memory.data(16));
export const READER_C = changetype<Reader>(memory.data(16));

export function initReader(r: Reader, ptr: usize, len: usize, input: i32): void {
  r.base = ptr;
  r.pos = ptr;
  r.end = ptr + len;
  r.input = input;
}

/** Records an error at `at` (an absolute address inside the input) and stops the reader. */
export function fail(r: Reader, code: i32, at: usize): void {
  setError(code, <i32>(at - r.base), r.input);
  r.pos = r.end;
}

@inline export function ok(): bool {
  return errCode == 0;
}

/** An unsigned LEB128 varint: minimal, at most 10 bytes, at most 2^53 - 1. One byte is the common case. */
@inline export function readVarint(r: Reader): u64 {
  const p = r.pos;
  if (p < r.end) {
    const b0 = load<u8>(p);
    if (b0 < 0x80) {
      r.pos = p + 1;
      return <u64>b0;
    }
  }
  return readLongVarint(r);
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

function readLongVarint(r: Reader): u64 {
  const start = r.pos;
  const end = r.end;
  if (start + 8 <= end) {
    // Up to 8 bytes at once: the first byte without its high bit ends the varint. Nothing can be truncated
    // here, so the checks (minimal, then range) come in the same order as in the byte loop below.
    const word = load<u64>(start);
    const stops = ~word & HIGH_BITS;
    if (stops != 0) {
      const bits = <u64>ctz(stops) + 1; // through the high bit of the last byte
      const len = <usize>(bits >> 3);
      if (((word >> (bits - 8)) & 0x7F) == 0) {
        fail(r, E_OVERLONG_VARINT, start);
        return 0;
      }
      const w = bits == 64 ? word : word & ((<u64>1 << bits) - 1);
      const v =
        (w & 0x7F) |
        ((w >> 1) & 0x3F80) |
        ((w >> 2) & 0x1F_C000) |
        ((w >> 3) & 0xFE0_0000) |
        ((w >> 4) & 0x7_F000_0000) |
        ((w >> 5) & 0x3F8_0000_0000) |
        ((w >> 6) & 0x1_FC00_0000_0000) |
        ((w >> 7) & 0xFE_0000_0000_0000);
      if (v > MAX_SAFE) {
        fail(r, E_OUT_OF_RANGE, start);
        return 0;
      }
      r.pos = start + len;
      return v;
    }
  }
  let p = start;
  let result: u64 = 0;
  let shift: u64 = 0;
  let big = false;
  while (true) {
    if (p >= end) {
      fail(r, E_TRUNCATED, start);
      return 0;
    }
    const b = <u64>load<u8>(p++);
    const low = b & 0x7F;
    if (shift == 63 && low > 1) big = true;
    result |= low << shift;
    if (b < 0x80) {
      if (b == 0 && shift > 0) {
        fail(r, E_OVERLONG_VARINT, start);
        return 0;
      }
      break;
    }
    shift += 7;
    if (shift > 63) {
      fail(r, E_OVERLONG_VARINT, start);
      return 0;
    }
  }
  r.pos = p;
  if (big || result > MAX_SAFE) {
    fail(r, E_OUT_OF_RANGE, start);
    return 0;
  }
  return result;
}

/** A replica id: a varint no larger than 2^32 - 1. */
export function readReplica(r: Reader): u64 {
  const start = r.pos;
  const v = readVarint(r);
  if (v > MAX_REPLICA) {
    fail(r, E_OUT_OF_RANGE, start);
    return 0;
  }
  return v;
}

/** A count or a length: never more than the bytes that remain after it. */
export function readCount(r: Reader): usize {
  const start = r.pos;
  const v = readVarint(r);
  if (v > <u64>(r.end - r.pos)) {
    fail(r, E_TRUNCATED, start);
    return 0;
  }
  return <usize>v;
}

/** Compares two byte strings: negative, zero or positive, as memcmp then the length. */
export function compareBytes(a: usize, alen: usize, b: usize, blen: usize): i32 {
  const n = alen < blen ? alen : blen;
  let i: usize = 0;
  while (i + 8 <= n) {
    const x = load<u64>(a + i);
    const y = load<u64>(b + i);
    if (x != y) {
      // little-endian words: the first differing byte is the lowest differing one
      const shift = ctz(x ^ y) & ~7;
      return <i32>((x >> shift) & 0xFF) - <i32>((y >> shift) & 0xFF);
    }
    i += 8;
  }
  while (i < n) {
    const x = <i32>load<u8>(a + i);
    const y = <i32>load<u8>(b + i);
    if (x != y) return x - y;
    i++;
  }
  return alen < blen ? -1 : alen > blen ? 1 : 0;
}

@unmanaged
export class Writer {
  base: usize;
  pos: usize;
  end: usize;
  sink: bool; // discards everything (validation): no output block is needed
}

/** The writer of the result, in static memory. */
export const WRITER = changetype<Writer>(memory.data(offsetof<Writer>()));

export function initWriter(w: Writer, ptr: usize, cap: usize): void {
  w.base = ptr;
  w.pos = ptr;
  w.end = ptr + cap;
  w.sink = false;
}

/** From now on the writer discards what it is given. */
export function discardFromHere(w: Writer): void {
  w.end = w.pos;
  w.sink = true;
}

/** The capacity is computed from the inputs; exceeding it would be a bug, reported rather than written. */
@inline export function room(w: Writer, n: usize): bool {
  if (w.pos + n > w.end) {
    if (!w.sink) {
      setError(E_INTERNAL, 0, 0);
      w.pos = w.end;
    }
    return false;
  }
  return true;
}

export function varintLength(v: u64): usize {
  let n: usize = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

export function writeVarint(w: Writer, v: u64): void {
  if (!room(w, 10)) return;
  let p = w.pos;
  while (v >= 0x80) {
    store<u8>(p++, <u8>(v | 0x80));
    v >>= 7;
  }
  store<u8>(p++, <u8>v);
  w.pos = p;
}

export function writeByte(w: Writer, b: u8): void {
  if (!room(w, 1)) return;
  store<u8>(w.pos, b);
  w.pos++;
}

export function writeBytes(w: Writer, ptr: usize, len: usize): void {
  writeVarint(w, <u64>len);
  if (!room(w, len)) return;
  memory.copy(w.pos, ptr, len);
  w.pos += len;
}

/** Space for a count written after its items (at most 2^35 items: 5 bytes). */
export const COUNT_RESERVE: usize = 5;

export function reserveCount(w: Writer): usize {
  const mark = w.pos;
  if (!room(w, COUNT_RESERVE)) return mark;
  w.pos += COUNT_RESERVE;
  return mark;
}

/** Writes the count at `mark` and moves the items written since back against it. */
export function commitCount(w: Writer, mark: usize, count: usize): void {
  if (w.pos < mark + COUNT_RESERVE) return; // an error stopped the writer
  const k = varintLength(<u64>count);
  const items = mark + COUNT_RESERVE;
  const n = w.pos - items;
  let p = mark;
  let v = <u64>count;
  while (v >= 0x80) {
    store<u8>(p++, <u8>(v | 0x80));
    v >>= 7;
  }
  store<u8>(p++, <u8>v);
  memory.copy(mark + k, items, n);
  w.pos = mark + k + n;
}
