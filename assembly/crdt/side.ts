// One input of a merge, read one entry at a time: the current key or replica, and the dots of the current entry.
import { compareBytes, fail, ok, readCount, readReplica, readVarint, Reader } from "./bytes";
import { contains, Context } from "./context";
import { E_DOT_NOT_IN_CONTEXT, E_NOT_SORTED, E_ZERO } from "./errors";
import { grow, take } from "./state";

/** A dot record: replica, counter, then (OR-Map) timestamp and the value's address and length in the input. */
export const DOT_SIZE: usize = 32;

@unmanaged
export class Side {
  n: usize; // entries in the list
  i: usize; // entries read so far
  has: bool; // is there a current entry
  start: usize; // where the current entry starts in the input
  key: usize;
  klen: usize;
  rep: u64;
  p: u64; // PN-Counter p, or a vector clock's counter
  q: u64; // PN-Counter n
  dots: usize;
  cap: usize;
  nd: usize;
}

export const SIDE_A = changetype<Side>(memory.data(offsetof<Side>()));
export const SIDE_B = changetype<Side>(memory.data(offsetof<Side>()));

export function initSide(s: Side, n: usize): void {
  s.n = n;
  s.i = 0;
  s.start = 0;
  s.has = false;
  s.key = 0;
  s.klen = 0;
  s.rep = 0;
  s.p = 0;
  s.q = 0;
  s.nd = 0;
  s.cap = 0;
  s.dots = 0;
}

/** Gives the side a scratch block for dots (freed with the call's other temporary blocks). */
export function withDots(s: Side): void {
  s.cap = 8;
  s.dots = take(8 * DOT_SIZE);
}

/** Reads the next element or key (a byte string), checking that the list is strictly increasing. */
export function nextKey(r: Reader, s: Side): void {
  s.has = false;
  if (s.i >= s.n || !ok()) return;
  const at = r.pos;
  const len = readCount(r);
  if (!ok()) return;
  const ptr = r.pos;
  r.pos += len;
  if (s.i > 0 && compareBytes(s.key, s.klen, ptr, len) >= 0) {
    fail(r, E_NOT_SORTED, at);
    return;
  }
  s.start = at;
  s.key = ptr;
  s.klen = len;
  s.i++;
  s.has = true;
}

@inline export function dotRep(d: usize): u64 {
  return load<u64>(d);
}
@inline export function dotCnt(d: usize): u64 {
  return load<u64>(d, 8);
}
@inline export function dotTs(d: usize): u64 {
  return load<u64>(d, 16);
}
@inline export function dotVal(d: usize): usize {
  return <usize>load<u32>(d, 24);
}
@inline export function dotLen(d: usize): usize {
  return <usize>load<u32>(d, 28);
}

/** Reads the dots of the current entry. Checks: not empty, strictly increasing, no zero counter, seen by `ctx`. */
export function readDots(r: Reader, s: Side, ctx: Context, payload: bool): void {
  s.nd = 0;
  const at = r.pos;
  const d = readCount(r);
  if (!ok()) return;
  if (d == 0) {
    fail(r, E_ZERO, at);
    return;
  }
  let prevRep: u64 = 0;
  let prevCnt: u64 = 0;
  for (let k: usize = 0; k < d; k++) {
    const dat = r.pos;
    const rep = readReplica(r);
    const cat = r.pos;
    const cnt = readVarint(r);
    let ts: u64 = 0;
    let vptr: usize = 0;
    let vlen: usize = 0;
    if (payload) {
      ts = readVarint(r);
      vlen = readCount(r);
      vptr = r.pos;
      r.pos += vlen;
    }
    if (!ok()) return;
    if (k > 0 && (rep < prevRep || (rep == prevRep && cnt <= prevCnt))) {
      fail(r, E_NOT_SORTED, dat);
      return;
    }
    if (cnt == 0) {
      fail(r, E_ZERO, cat);
      return;
    }
    if (!contains(ctx, rep, cnt)) {
      fail(r, E_DOT_NOT_IN_CONTEXT, dat);
      return;
    }
    if (k == s.cap) {
      s.cap = s.cap << 1;
      s.dots = grow(s.dots, s.cap * DOT_SIZE);
      if (!ok()) return;
    }
    const rec = s.dots + k * DOT_SIZE;
    store<u64>(rec, rep);
    store<u64>(rec, cnt, 8);
    store<u64>(rec, ts, 16);
    store<u32>(rec, <u32>vptr, 24);
    store<u32>(rec, <u32>vlen, 28);
    prevRep = rep;
    prevCnt = cnt;
  }
  s.nd = d;
}

/** Reads the next PN-Counter entry (replica, p, n). Checks: strictly increasing, not p = n = 0. */
export function nextCounter(r: Reader, s: Side): void {
  s.has = false;
  if (s.i >= s.n || !ok()) return;
  const at = r.pos;
  const rep = readReplica(r);
  const p = readVarint(r);
  const q = readVarint(r);
  if (!ok()) return;
  if (s.i > 0 && rep <= s.rep) {
    fail(r, E_NOT_SORTED, at);
    return;
  }
  if (p == 0 && q == 0) {
    fail(r, E_ZERO, at);
    return;
  }
  s.rep = rep;
  s.p = p;
  s.q = q;
  s.i++;
  s.has = true;
}

/** Reads the next vector clock entry (replica, counter). Checks: strictly increasing, counter >= 1. */
export function nextClock(r: Reader, s: Side): void {
  s.has = false;
  if (s.i >= s.n || !ok()) return;
  const at = r.pos;
  const rep = readReplica(r);
  const cat = r.pos;
  const c = readVarint(r);
  if (!ok()) return;
  if (s.i > 0 && rep <= s.rep) {
    fail(r, E_NOT_SORTED, at);
    return;
  }
  if (c == 0) {
    fail(r, E_ZERO, cat);
    return;
  }
  s.rep = rep;
  s.p = c;
  s.i++;
  s.has = true;
}
