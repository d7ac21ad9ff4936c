// The CRDT module (docs/crdt-format.md): merge of states and deltas, validation, vector clock comparison and the
// deltas of the operations, all on encodings in linear memory.
//
// Memory is explicit. The host takes a block with `alloc`, writes an input into it, calls a function, and gives
// the block back with `free`. A function that produces bytes returns the address of a new block (its length is
// `resultLength()`), which the host copies out and frees; it returns 0 on error, with `errorCode()`,
// `errorOffset()` and `errorInput()` telling what and where. Every other block a call takes is freed before it
// returns, on success and on error alike. Malformed input is reported, never trapped on: every count and length is
// checked against the bytes that remain before it is used.
import { discardFromHere, fail, initReader, initWriter, ok, readCount, READER_A, READER_B, WRITER } from "./bytes";
import { E_TRAILING_BYTES, E_TYPE_MISMATCH, ERROR_CODE_MAX, errorText } from "./errors";
import { mergeBody, readHeader, T_GSET, T_ORMAP, T_ORSET, T_PNCOUNTER, T_SEMANTIC, T_VCLOCK, writeHeader } from "./merge";
import { addDelta, counterDelta, gsetAddDelta, removeDelta, tickDelta } from "./ops";
import { initSide, nextClock, SIDE_A, SIDE_B } from "./side";
import * as state from "./state";
import { begin, errCode, errInput, errOffset, keep, releaseAll, resultLen, take } from "./state";

export const FORMAT_VERSION: i32 = 1;
export const ERROR_CODES: i32 = ERROR_CODE_MAX;

export function alloc(size: usize): usize {
  return heap.alloc(size > 0 ? size : 1);
}

export function free(ptr: usize): void {
  heap.free(ptr);
}

export function resultLength(): usize {
  return resultLen;
}

export function errorCode(): i32 {
  return errCode;
}

export function errorOffset(): i32 {
  return errOffset;
}

export function errorInput(): i32 {
  return errInput;
}

/** The message of an error code, as a static string (the host reads its UTF-16 code units). */
export function errorMessage(code: i32): string {
  return errorText(code);
}

/** Ends an exported call: frees its temporary blocks, keeps the result, records its length. */
function end(out: usize): usize {
  if (!ok() || out == 0) {
    releaseAll();
    return 0;
  }
  keep(out);
  releaseAll();
  state.resultLen = WRITER.pos - out;
  return out;
}

// An empty state of each type: the header then zero counts (G-Set 1, PN-Counter 1, OR-Set 3, OR-Map 3,
// vector clock 1, semantic state 8).
const EMPTY: usize = memory.data(12);
const EMPTY_BODY: StaticArray<u8> = [0, 1, 1, 3, 3, 1, 8];

/** Merges into a new block; with `check`, only reads and checks both (no output block). */
function mergeInto(pa: usize, la: usize, pb: usize, lb: usize, check: bool = false): usize {
  const ra = READER_A;
  const rb = READER_B;
  initReader(ra, pa, la, 0);
  initReader(rb, pb, lb, 1);
  const ta = readHeader(ra);
  if (!ok()) return 0;
  const tb = readHeader(rb);
  if (!ok()) return 0;
  if (ta != tb) {
    fail(rb, E_TYPE_MISMATCH, pb + 3);
    return 0;
  }
  const cap: usize = check ? 16 : la + lb + 16;
  const out = take(cap);
  initWriter(WRITER, out, cap);
  writeHeader(WRITER, ta);
  if (check) discardFromHere(WRITER);
  mergeBody(ta, ra, rb, WRITER);
  if (ok() && ra.pos != ra.end) fail(ra, E_TRAILING_BYTES, ra.pos);
  if (ok() && rb.pos != rb.end) fail(rb, E_TRAILING_BYTES, rb.pos);
  return out;
}

/** The merge (join) of two encodings of the same type: states or deltas alike. */
export function merge(pa: usize, la: usize, pb: usize, lb: usize): usize {
  begin();
  return end(mergeInto(pa, la, pb, lb));
}

/** Checks an encoding completely; returns its type (1-6), or 0 with the error. */
export function validate(ptr: usize, len: usize): i32 {
  begin();
  let t = 0;
  if (len >= 4 && load<u8>(ptr + 3) >= <u8>T_GSET && load<u8>(ptr + 3) <= <u8>T_SEMANTIC) {
    // merge with the empty state of the type: the same checks, in the same order, as decoding
    t = <i32>load<u8>(ptr + 3);
    memory.copy(EMPTY, ptr, 4);
    memory.fill(EMPTY + 4, 0, 8);
    mergeInto(ptr, len, EMPTY, 4 + <usize>EMPTY_BODY[t], true);
  } else {
    const r = READER_A;
    initReader(r, ptr, len, 0);
    readHeader(r);
  }
  releaseAll();
  return ok() ? t : 0;
}

/** Compares two vector clocks: 0 equal, 1 before (a < b), 2 after (a > b), 3 concurrent; -1 on error. */
export function compareClocks(pa: usize, la: usize, pb: usize, lb: usize): i32 {
  begin();
  const ra = READER_A;
  const rb = READER_B;
  initReader(ra, pa, la, 0);
  initReader(rb, pb, lb, 1);
  const ta = readHeader(ra);
  if (ok() && ta != T_VCLOCK) fail(ra, E_TYPE_MISMATCH, pa + 3);
  const tb = ok() ? readHeader(rb) : 0;
  if (ok() && tb != T_VCLOCK) fail(rb, E_TYPE_MISMATCH, pb + 3);
  let less = false;
  let greater = false;
  if (ok()) {
    const na = readCount(ra);
    const nb = ok() ? readCount(rb) : 0;
    const a = SIDE_A;
    const b = SIDE_B;
    initSide(a, na);
    initSide(b, nb);
    nextClock(ra, a);
    nextClock(rb, b);
    while ((a.has || b.has) && ok()) {
      const c: i32 = a.has && b.has ? (a.rep < b.rep ? -1 : a.rep > b.rep ? 1 : 0) : a.has ? -1 : 1;
      if (c < 0) greater = true;
      else if (c > 0) less = true;
      else if (a.p < b.p) less = true;
      else if (a.p > b.p) greater = true;
      if (c <= 0) nextClock(ra, a);
      if (c >= 0) nextClock(rb, b);
    }
    if (ok() && ra.pos != ra.end) fail(ra, E_TRAILING_BYTES, ra.pos);
    if (ok() && rb.pos != rb.end) fail(rb, E_TRAILING_BYTES, rb.pos);
  }
  releaseAll();
  if (!ok()) return -1;
  return less && greater ? 3 : less ? 1 : greater ? 2 : 0;
}

/** The delta of adding an element to a G-Set (it does not depend on the state). */
export function gsetAdd(ep: usize, elen: usize): usize {
  begin();
  return end(gsetAddDelta(ep, elen));
}

/** The delta of add(element) at a replica, on an OR-Set state. */
export function orsetAdd(sp: usize, slen: usize, ep: usize, elen: usize, replica: f64): usize {
  begin();
  return end(addDelta(T_ORSET, sp, slen, ep, elen, 0, 0, 0, replica));
}

/** The delta of remove(element), on an OR-Set state. */
export function orsetRemove(sp: usize, slen: usize, ep: usize, elen: usize): usize {
  begin();
  return end(removeDelta(T_ORSET, sp, slen, ep, elen));
}

/** The delta of set(key, value, timestamp) at a replica, on an OR-Map state. */
export function ormapSet(sp: usize, slen: usize, kp: usize, klen: usize, vp: usize, vlen: usize, timestamp: f64, replica: f64): usize {
  begin();
  return end(addDelta(T_ORMAP, sp, slen, kp, klen, vp, vlen, timestamp, replica));
}

/** The delta of remove(key), on an OR-Map state. */
export function ormapRemove(sp: usize, slen: usize, kp: usize, klen: usize): usize {
  begin();
  return end(removeDelta(T_ORMAP, sp, slen, kp, klen));
}

/** The delta of adding `amount` (a nonzero whole number; negative decrements) at a replica, on a PN-Counter. */
export function pncounterAdd(sp: usize, slen: usize, replica: f64, amount: f64): usize {
  begin();
  return end(counterDelta(sp, slen, replica, amount));
}

/** The delta of a tick of a replica, on a vector clock. */
export function vclockTick(sp: usize, slen: usize, replica: f64): usize {
  begin();
  return end(tickDelta(sp, slen, replica));
}

// Type tags, for the host.
export const TYPE_GSET: i32 = T_GSET;
export const TYPE_PNCOUNTER: i32 = T_PNCOUNTER;
export const TYPE_ORSET: i32 = T_ORSET;
export const TYPE_ORMAP: i32 = T_ORMAP;
export const TYPE_VCLOCK: i32 = T_VCLOCK;
export const TYPE_SEMANTIC: i32 = T_SEMANTIC;
