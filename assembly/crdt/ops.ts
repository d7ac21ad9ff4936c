// Operations: each builds the delta of one mutation (a small state of the same type, docs/crdt-format.md); the
// new state is the merge of the state and its delta, which the host asks for with `merge`.
import { compareBytes, fail, initReader, initWriter, MAX_REPLICA, MAX_SAFE, ok, readCount, READER_C, writeBytes, writeVarint, WRITER } from "./bytes";
import { CTX_A, maxCounter, readContext, writeContextOfDots } from "./context";
import { E_BAD_ARGUMENT, E_OVERFLOW, E_TYPE_MISMATCH } from "./errors";
import { readHeader, T_GSET, T_ORMAP, T_ORSET, T_PNCOUNTER, T_VCLOCK, writeHeader } from "./merge";
import { keep, setError, take } from "./state";
import { DOT_SIZE, dotCnt, dotRep, initSide, nextClock, nextCounter, nextKey, readDots, SIDE_A, withDots } from "./side";

/** A whole number in [0, max], as the host passes numbers (f64). */
export function argument(x: f64, max: u64): bool {
  if (!(x >= 0) || x > <f64>max || x != Math.floor(x)) {
    setError(E_BAD_ARGUMENT, 0, 0);
    return false;
  }
  return true;
}

/** Opens the state of an operation: reads its header and checks its type. */
function open(ptr: usize, len: usize, t: i32): bool {
  initReader(READER_C, ptr, len, 0);
  const found = readHeader(READER_C);
  if (!ok()) return false;
  if (found != t) {
    fail(READER_C, E_TYPE_MISMATCH, ptr + 3);
    return false;
  }
  return true;
}

function result(cap: usize, t: i32): usize {
  const out = take(cap);
  initWriter(WRITER, out, cap);
  writeHeader(WRITER, t);
  return out;
}

function finish(out: usize): usize {
  if (!ok()) return 0;
  keep(out);
  return out;
}

export function gsetAddDelta(ep: usize, elen: usize): usize {
  const out = result(16 + elen, T_GSET);
  writeVarint(WRITER, 1);
  writeBytes(WRITER, ep, elen);
  return finish(out);
}

/**
 * Finds the dots of `key` in a validated OR-Set or OR-Map (left in SIDE_A: none if the key is absent) and leaves
 * its context in CTX_A.
 */
function findDots(kp: usize, klen: usize, payload: bool): void {
  const r = READER_C;
  readContext(r, CTX_A);
  const n = readCount(r);
  if (!ok()) return;
  const s = SIDE_A;
  initSide(s, n);
  withDots(s);
  nextKey(r, s);
  while (s.has && ok()) {
    const c = compareBytes(s.key, s.klen, kp, klen);
    readDots(r, s, CTX_A, payload);
    if (c == 0) return;
    if (c > 0) break;
    nextKey(r, s);
  }
  s.nd = 0;
}

/** The dots of the key plus the new dot, sorted: the context of an add or set delta. */
function withNewDot(rep: u64, cnt: u64): usize {
  const s = SIDE_A;
  const dots = take((s.nd + 1) * DOT_SIZE);
  let k: usize = 0;
  let placed = false;
  for (let i: usize = 0; i < s.nd; i++) {
    const d = s.dots + i * DOT_SIZE;
    if (!placed && dotRep(d) > rep) {
      store<u64>(dots + k * 16, rep);
      store<u64>(dots + k * 16, cnt, 8);
      k++;
      placed = true;
    }
    store<u64>(dots + k * 16, dotRep(d));
    store<u64>(dots + k * 16, dotCnt(d), 8);
    k++;
  }
  if (!placed) {
    store<u64>(dots + k * 16, rep);
    store<u64>(dots + k * 16, cnt, 8);
  }
  return dots;
}

/** The dots of the key alone: the context of a remove delta. */
function oldDots(): usize {
  const s = SIDE_A;
  const dots = take(s.nd * 16 + 16);
  for (let i: usize = 0; i < s.nd; i++) {
    const d = s.dots + i * DOT_SIZE;
    store<u64>(dots + i * 16, dotRep(d));
    store<u64>(dots + i * 16, dotCnt(d), 8);
  }
  return dots;
}

/** Context bytes of n dots: two varints each, plus two counts. */
@inline function contextCap(n: usize): usize {
  return 16 + n * 20;
}

function nextDot(rep: u64): u64 {
  const next = maxCounter(CTX_A, rep) + 1;
  if (next > MAX_SAFE) {
    setError(E_OVERFLOW, 0, 0);
    return 0;
  }
  return next;
}

/** add(element) at a replica (OR-Set) or set(key, value, timestamp) at a replica (OR-Map). */
export function addDelta(t: i32, sp: usize, slen: usize, kp: usize, klen: usize, vp: usize, vlen: usize, timestamp: f64, replica: f64): usize {
  if (!argument(replica, MAX_REPLICA)) return 0;
  const payload = t == T_ORMAP;
  if (payload && !argument(timestamp, MAX_SAFE)) return 0;
  if (!open(sp, slen, t)) return 0;
  findDots(kp, klen, payload);
  if (!ok()) return 0;
  const rep = <u64>replica;
  const cnt = nextDot(rep);
  if (!ok()) return 0;
  const nd = SIDE_A.nd + 1;
  const out = result(32 + contextCap(nd) + klen + vlen, t);
  writeContextOfDots(WRITER, withNewDot(rep, cnt), nd);
  writeVarint(WRITER, 1);
  writeBytes(WRITER, kp, klen);
  writeVarint(WRITER, 1);
  writeVarint(WRITER, rep);
  writeVarint(WRITER, cnt);
  if (payload) {
    writeVarint(WRITER, <u64>timestamp);
    writeBytes(WRITER, vp, vlen);
  }
  return finish(out);
}

/** remove(element) (OR-Set) or remove(key) (OR-Map): a context of the dots it held, and no entries. */
export function removeDelta(t: i32, sp: usize, slen: usize, kp: usize, klen: usize): usize {
  if (!open(sp, slen, t)) return 0;
  findDots(kp, klen, t == T_ORMAP);
  if (!ok()) return 0;
  const nd = SIDE_A.nd;
  const out = result(16 + contextCap(nd), t);
  writeContextOfDots(WRITER, oldDots(), nd);
  writeVarint(WRITER, 0);
  return finish(out);
}

/** increment (amount > 0) or decrement (amount < 0) of a PN-Counter at a replica: that replica's new entry. */
export function counterDelta(sp: usize, slen: usize, replica: f64, amount: f64): usize {
  if (!argument(replica, MAX_REPLICA)) return 0;
  if (amount == 0 || !argument(Math.abs(amount), MAX_SAFE)) {
    setError(E_BAD_ARGUMENT, 0, 0);
    return 0;
  }
  if (!open(sp, slen, T_PNCOUNTER)) return 0;
  const r = READER_C;
  const n = readCount(r);
  if (!ok()) return 0;
  const rep = <u64>replica;
  const s = SIDE_A;
  initSide(s, n);
  let p: u64 = 0;
  let q: u64 = 0;
  nextCounter(r, s);
  while (s.has && ok()) {
    if (s.rep == rep) {
      p = s.p;
      q = s.q;
      break;
    }
    if (s.rep > rep) break;
    nextCounter(r, s);
  }
  if (!ok()) return 0;
  const by = <u64>Math.abs(amount);
  if (amount > 0) {
    if (p > MAX_SAFE - by) {
      setError(E_OVERFLOW, 0, 0);
      return 0;
    }
    p += by;
  } else {
    if (q > MAX_SAFE - by) {
      setError(E_OVERFLOW, 0, 0);
      return 0;
    }
    q += by;
  }
  const out = result(48, T_PNCOUNTER);
  writeVarint(WRITER, 1);
  writeVarint(WRITER, rep);
  writeVarint(WRITER, p);
  writeVarint(WRITER, q);
  return finish(out);
}

/** A vector clock's tick at a replica: that replica's new entry. */
export function tickDelta(sp: usize, slen: usize, replica: f64): usize {
  if (!argument(replica, MAX_REPLICA)) return 0;
  if (!open(sp, slen, T_VCLOCK)) return 0;
  const r = READER_C;
  const n = readCount(r);
  if (!ok()) return 0;
  const rep = <u64>replica;
  const s = SIDE_A;
  initSide(s, n);
  let c: u64 = 0;
  nextClock(r, s);
  while (s.has && ok()) {
    if (s.rep == rep) {
      c = s.p;
      break;
    }
    if (s.rep > rep) break;
    nextClock(r, s);
  }
  if (!ok()) return 0;
  if (c >= MAX_SAFE) {
    setError(E_OVERFLOW, 0, 0);
    return 0;
  }
  const out = result(32, T_VCLOCK);
  writeVarint(WRITER, 1);
  writeVarint(WRITER, rep);
  writeVarint(WRITER, c + 1);
  return finish(out);
}

