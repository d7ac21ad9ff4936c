// Merge of two encodings of the same type in one pass over both: every field of both inputs is read and checked
// (so a merge is also a full validation), and the canonical encoding of the join is written. The output is never
// longer than the two inputs together (each entry of the result comes from one of them), which sizes its block.
import { commitCount, compareBytes, fail, ok, readCount, Reader, reserveCount, room, writeBytes, writeVarint, Writer } from "./bytes";
import { contains, Context, CTX_A, CTX_B, readContext, writeMergedContext } from "./context";
import { E_BAD_MAGIC, E_BAD_TYPE, E_BAD_VERSION, E_TRUNCATED } from "./errors";
import { grow, take } from "./state";
import { DOT_SIZE, dotCnt, dotLen, dotRep, dotTs, dotVal, initSide, nextClock, nextCounter, nextKey, readDots, Side, SIDE_A, SIDE_B, withDots } from "./side";

export const MAGIC_0: u8 = 0xDA;
export const MAGIC_1: u8 = 0xAC;
export const VERSION: u8 = 1;

export const T_GSET: i32 = 1;
export const T_PNCOUNTER: i32 = 2;
export const T_ORSET: i32 = 3;
export const T_ORMAP: i32 = 4;
export const T_VCLOCK: i32 = 5;
export const T_SEMANTIC: i32 = 6;

/** Reads the 4-byte header; returns the type (0 after an error). */
export function readHeader(r: Reader): i32 {
  const p = r.base;
  const len = r.end - r.base;
  if (len < 2) {
    fail(r, E_TRUNCATED, p);
    return 0;
  }
  if (load<u8>(p) != MAGIC_0 || load<u8>(p + 1) != MAGIC_1) {
    fail(r, E_BAD_MAGIC, p);
    return 0;
  }
  if (len < 3) {
    fail(r, E_TRUNCATED, p + 2);
    return 0;
  }
  if (load<u8>(p + 2) != VERSION) {
    fail(r, E_BAD_VERSION, p + 2);
    return 0;
  }
  if (len < 4) {
    fail(r, E_TRUNCATED, p + 3);
    return 0;
  }
  const t = <i32>load<u8>(p + 3);
  if (t < T_GSET || t > T_SEMANTIC) {
    fail(r, E_BAD_TYPE, p + 3);
    return 0;
  }
  r.pos = p + 4;
  return t;
}

export function writeHeader(w: Writer, t: i32): void {
  store<u8>(w.pos, MAGIC_0);
  store<u8>(w.pos, MAGIC_1, 1);
  store<u8>(w.pos, VERSION, 2);
  store<u8>(w.pos, <u8>t, 3);
  w.pos += 4;
}

export function mergeBody(t: i32, ra: Reader, rb: Reader, w: Writer): void {
  switch (t) {
    case T_GSET:
      mergeGSet(ra, rb, w);
      break;
    case T_PNCOUNTER:
      mergePNCounter(ra, rb, w);
      break;
    case T_ORSET:
      mergeDotted(ra, rb, w, false);
      break;
    case T_ORMAP:
      mergeDotted(ra, rb, w, true);
      break;
    case T_VCLOCK:
      mergeVClock(ra, rb, w);
      break;
    case T_SEMANTIC:
      mergeGSet(ra, rb, w);
      if (ok()) mergeDotted(ra, rb, w, true);
      if (ok()) mergePNCounter(ra, rb, w);
      if (ok()) mergeDotted(ra, rb, w, false);
      break;
  }
}

/** Reads both inputs' entry counts and readies SIDE_A and SIDE_B for them; false when an input is malformed. */
function openSides(ra: Reader, rb: Reader): bool {
  const na = readCount(ra);
  if (!ok()) return false;
  const nb = readCount(rb);
  if (!ok()) return false;
  initSide(SIDE_A, na);
  initSide(SIDE_B, nb);
  return true;
}

function mergeGSet(ra: Reader, rb: Reader, w: Writer): void {
  if (!openSides(ra, rb)) return;
  const a = SIDE_A;
  const b = SIDE_B;
  const mark = reserveCount(w);
  let count: usize = 0;
  nextKey(ra, a);
  nextKey(rb, b);
  while ((a.has || b.has) && ok()) {
    const c = a.has && b.has ? compareBytes(a.key, a.klen, b.key, b.klen) : a.has ? -1 : 1;
    if (c <= 0) writeBytes(w, a.key, a.klen);
    else writeBytes(w, b.key, b.klen);
    count++;
    if (c <= 0) nextKey(ra, a);
    if (c >= 0) nextKey(rb, b);
  }
  commitCount(w, mark, count);
}

function mergePNCounter(ra: Reader, rb: Reader, w: Writer): void {
  if (!openSides(ra, rb)) return;
  const a = SIDE_A;
  const b = SIDE_B;
  const mark = reserveCount(w);
  let count: usize = 0;
  nextCounter(ra, a);
  nextCounter(rb, b);
  while ((a.has || b.has) && ok()) {
    const c: i32 = a.has && b.has ? (a.rep < b.rep ? -1 : a.rep > b.rep ? 1 : 0) : a.has ? -1 : 1;
    if (c < 0) {
      writeVarint(w, a.rep);
      writeVarint(w, a.p);
      writeVarint(w, a.q);
    } else if (c > 0) {
      writeVarint(w, b.rep);
      writeVarint(w, b.p);
      writeVarint(w, b.q);
    } else {
      writeVarint(w, a.rep);
      writeVarint(w, a.p > b.p ? a.p : b.p);
      writeVarint(w, a.q > b.q ? a.q : b.q);
    }
    count++;
    if (c <= 0) nextCounter(ra, a);
    if (c >= 0) nextCounter(rb, b);
  }
  commitCount(w, mark, count);
}

function mergeVClock(ra: Reader, rb: Reader, w: Writer): void {
  if (!openSides(ra, rb)) return;
  const a = SIDE_A;
  const b = SIDE_B;
  const mark = reserveCount(w);
  let count: usize = 0;
  nextClock(ra, a);
  nextClock(rb, b);
  while ((a.has || b.has) && ok()) {
    const c: i32 = a.has && b.has ? (a.rep < b.rep ? -1 : a.rep > b.rep ? 1 : 0) : a.has ? -1 : 1;
    if (c < 0) {
      writeVarint(w, a.rep);
      writeVarint(w, a.p);
    } else if (c > 0) {
      writeVarint(w, b.rep);
      writeVarint(w, b.p);
    } else {
      writeVarint(w, a.rep);
      writeVarint(w, a.p > b.p ? a.p : b.p);
    }
    count++;
    if (c <= 0) nextClock(ra, a);
    if (c >= 0) nextClock(rb, b);
  }
  commitCount(w, mark, count);
}

// The surviving dots of the current entry, as addresses of dot records.
let survivors: usize = 0;
let survivorsCap: usize = 0;
let nsurvivors: usize = 0;

function survive(d: usize): void {
  if (nsurvivors == survivorsCap) {
    survivorsCap <<= 1;
    survivors = grow(survivors, survivorsCap << 2);
    if (!ok()) return;
  }
  store<usize>(survivors + (nsurvivors << 2), d);
  nsurvivors++;
}

/** OR-Set (no payload) and OR-Map (payload): dots both sides hold, plus dots the other side has not seen. */
function mergeDotted(ra: Reader, rb: Reader, w: Writer, payload: bool): void {
  readContext(ra, CTX_A);
  if (!ok()) return;
  readContext(rb, CTX_B);
  if (!ok()) return;
  writeMergedContext(w, CTX_A, CTX_B);
  if (!openSides(ra, rb)) return;
  const a = SIDE_A;
  const b = SIDE_B;
  withDots(a);
  withDots(b);
  survivorsCap = 16;
  survivors = take(survivorsCap << 2);
  const mark = reserveCount(w);
  let count: usize = 0;
  nextKey(ra, a);
  nextKey(rb, b);
  while ((a.has || b.has) && ok()) {
    const c = a.has && b.has ? compareBytes(a.key, a.klen, b.key, b.klen) : a.has ? -1 : 1;
    nsurvivors = 0;
    if (c <= 0) readDots(ra, a, CTX_A, payload);
    if (c >= 0) readDots(rb, b, CTX_B, payload);
    if (!ok()) break;
    // An entry both sides hold byte for byte merges to itself (every dot survives, with its payload): the common
    // case when replicas diverged a little, copied as it is once both copies have been checked.
    if (c == 0 && ra.pos - a.start == rb.pos - b.start && compareBytes(a.start, ra.pos - a.start, b.start, rb.pos - b.start) == 0) {
      copyEntry(w, a.start, ra.pos - a.start);
      count++;
      nextKey(ra, a);
      nextKey(rb, b);
      continue;
    }
    if (c < 0) unseen(a, CTX_B);
    else if (c > 0) unseen(b, CTX_A);
    else both(a, b);
    // An entry only one side holds, none of whose dots the other side has seen, is copied as it is too.
    if (c < 0 && nsurvivors == a.nd) {
      copyEntry(w, a.start, ra.pos - a.start);
      count++;
      nextKey(ra, a);
      continue;
    }
    if (c > 0 && nsurvivors == b.nd) {
      copyEntry(w, b.start, rb.pos - b.start);
      count++;
      nextKey(rb, b);
      continue;
    }
    if (nsurvivors > 0) {
      if (c <= 0) writeBytes(w, a.key, a.klen);
      else writeBytes(w, b.key, b.klen);
      writeVarint(w, <u64>nsurvivors);
      for (let k: usize = 0; k < nsurvivors; k++) {
        const d = load<usize>(survivors + (k << 2));
        writeVarint(w, dotRep(d));
        writeVarint(w, dotCnt(d));
        if (payload) {
          writeVarint(w, dotTs(d));
          writeBytes(w, dotVal(d), dotLen(d));
        }
      }
      count++;
    }
    if (c <= 0) nextKey(ra, a);
    if (c >= 0) nextKey(rb, b);
  }
  commitCount(w, mark, count);
}

function copyEntry(w: Writer, from: usize, len: usize): void {
  if (!room(w, len)) return;
  memory.copy(w.pos, from, len);
  w.pos += len;
}

/** The dots of an entry only one side holds survive unless the other side has seen them (and so removed them). */
function unseen(s: Side, other: Context): void {
  for (let k: usize = 0; k < s.nd; k++) {
    const d = s.dots + k * DOT_SIZE;
    if (!contains(other, dotRep(d), dotCnt(d))) survive(d);
  }
}

/** Payload order for one dot held with two payloads (never produced by correct replicas): timestamp, then value. */
function payloadLess(x: usize, y: usize): bool {
  if (dotTs(x) != dotTs(y)) return dotTs(x) < dotTs(y);
  return compareBytes(dotVal(x), dotLen(x), dotVal(y), dotLen(y)) < 0;
}

function both(a: Side, b: Side): void {
  let i: usize = 0;
  let j: usize = 0;
  while (i < a.nd || j < b.nd) {
    const x = a.dots + i * DOT_SIZE;
    const y = b.dots + j * DOT_SIZE;
    let c: i32;
    if (j >= b.nd) c = -1;
    else if (i >= a.nd) c = 1;
    else if (dotRep(x) != dotRep(y)) c = dotRep(x) < dotRep(y) ? -1 : 1;
    else c = dotCnt(x) < dotCnt(y) ? -1 : dotCnt(x) > dotCnt(y) ? 1 : 0;
    if (c == 0) {
      survive(payloadLess(x, y) ? y : x);
      i++;
      j++;
    } else if (c < 0) {
      if (!contains(CTX_B, dotRep(x), dotCnt(x))) survive(x);
      i++;
    } else {
      if (!contains(CTX_A, dotRep(y), dotCnt(y))) survive(y);
      j++;
    }
  }
}
