// Causal contexts: a version vector plus a cloud of dots beyond it (docs/crdt-format.md, "context").
// A parsed context lives in two arrays of 16-byte records (replica u64, counter u64), both sorted; the arrays
// grow with what has actually been parsed, never with what a count claims.
import { commitCount, fail, ok, readCount, readReplica, readVarint, Reader, reserveCount, writeVarint, Writer } from "./bytes";
import { E_NOT_COMPACT, E_NOT_SORTED, E_ZERO } from "./errors";
import { grow, take } from "./state";

@unmanaged
export class Context {
  vv: usize;
  nvv: usize;
  cloud: usize;
  ncloud: usize;
  cache: usize; // index of the last version-vector entry found: dots come in runs of one replica
}

export const CTX_A = changetype<Context>(memory.data(20));
export const CTX_B = changetype<Context>(memory.data(20));

@inline export function repAt(arr: usize, i: usize): u64 {
  return load<u64>(arr + (i << 4));
}

@inline export function cntAt(arr: usize, i: usize): u64 {
  return load<u64>(arr + (i << 4), 8);
}

@inline function put(arr: usize, i: usize, rep: u64, cnt: u64): void {
  store<u64>(arr + (i << 4), rep);
  store<u64>(arr + (i << 4), cnt, 8);
}

const START_CAPACITY: usize = 16;

/** Reads a context. Checks: strictly increasing, no zero counter, cloud dots beyond vv + 1. */
export function readContext(r: Reader, c: Context): void {
  c.nvv = 0;
  c.ncloud = 0;
  c.cache = 0;
  c.vv = 0;
  c.cloud = 0;
  const n = readCount(r);
  if (!ok()) return;
  let cap = n < START_CAPACITY ? n : START_CAPACITY;
  let vv = take(cap << 4);
  let prev: u64 = 0;
  for (let i: usize = 0; i < n; i++) {
    const at = r.pos;
    const rep = readReplica(r);
    const cntAt_ = r.pos;
    const cnt = readVarint(r);
    if (!ok()) return;
    if (i > 0 && rep <= prev) { fail(r, E_NOT_SORTED, at); return; }
    if (cnt == 0) { fail(r, E_ZERO, cntAt_); return; }
    if (i == cap) {
      cap = cap << 1 < n ? cap << 1 : n;
      vv = grow(vv, cap << 4);
    }
    put(vv, i, rep, cnt);
    prev = rep;
  }
  c.vv = vv;
  c.nvv = n;
  const m = readCount(r);
  if (!ok()) return;
  cap = m < START_CAPACITY ? m : START_CAPACITY;
  let cloud = take(cap << 4);
  let prevRep: u64 = 0;
  let prevCnt: u64 = 0;
  let j: usize = 0;
  for (let i: usize = 0; i < m; i++) {
    const at = r.pos;
    const rep = readReplica(r);
    const cntAt_ = r.pos;
    const cnt = readVarint(r);
    if (!ok()) return;
    if (i > 0 && (rep < prevRep || (rep == prevRep && cnt <= prevCnt))) { fail(r, E_NOT_SORTED, at); return; }
    if (cnt == 0) { fail(r, E_ZERO, cntAt_); return; }
    while (j < n && repAt(vv, j) < rep) j++;
    const base: u64 = j < n && repAt(vv, j) == rep ? cntAt(vv, j) : 0;
    if (cnt <= base + 1) { fail(r, E_NOT_COMPACT, at); return; }
    if (i == cap) {
      cap = cap << 1 < m ? cap << 1 : m;
      cloud = grow(cloud, cap << 4);
    }
    put(cloud, i, rep, cnt);
    prevRep = rep;
    prevCnt = cnt;
  }
  c.cloud = cloud;
  c.ncloud = m;
}

/** The version-vector counter of a replica (0 if absent). */
export function vvGet(c: Context, rep: u64): u64 {
  const n = c.nvv;
  if (n == 0) return 0;
  const vv = c.vv;
  const hint = c.cache;
  if (hint < n && repAt(vv, hint) == rep) return cntAt(vv, hint);
  let lo: usize = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const x = repAt(vv, mid);
    if (x == rep) {
      c.cache = mid;
      return cntAt(vv, mid);
    }
    if (x < rep) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}

/** Has the context seen the dot? */
export function contains(c: Context, rep: u64, cnt: u64): bool {
  if (cnt <= vvGet(c, rep)) return true;
  const m = c.ncloud;
  if (m == 0) return false;
  const cloud = c.cloud;
  let lo: usize = 0;
  let hi = m;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const x = repAt(cloud, mid);
    const y = cntAt(cloud, mid);
    if (x == rep && y == cnt) return true;
    if (x < rep || (x == rep && y < cnt)) lo = mid + 1;
    else hi = mid;
  }
  return false;
}

/** The largest counter of a replica that the context has seen. */
export function maxCounter(c: Context, rep: u64): u64 {
  let best = vvGet(c, rep);
  const cloud = c.cloud;
  for (let i: usize = 0; i < c.ncloud; i++) {
    if (repAt(cloud, i) == rep && cntAt(cloud, i) > best) best = cntAt(cloud, i);
  }
  return best;
}

/**
 * Writes a compact context from a version vector `vv` (sorted replicas) and a sorted, duplicate-free dot list
 * `cloud`: dots the version vector covers go, dots that extend it are absorbed. The cloud array is rewritten in
 * place with the dots that stay.
 */
function writeCompact(w: Writer, vv: usize, nvv: usize, cloud: usize, ncloud: usize): void {
  const mark = reserveCount(w);
  let written: usize = 0;
  let kept: usize = 0;
  let i: usize = 0;
  let j: usize = 0;
  while (i < nvv || j < ncloud) {
    let rep: u64;
    if (i < nvv && (j >= ncloud || repAt(vv, i) <= repAt(cloud, j))) rep = repAt(vv, i);
    else rep = repAt(cloud, j);
    let v: u64 = 0;
    if (i < nvv && repAt(vv, i) == rep) {
      v = cntAt(vv, i);
      i++;
    }
    while (j < ncloud && repAt(cloud, j) == rep) {
      const c = cntAt(cloud, j);
      j++;
      if (c <= v) continue;
      if (c == v + 1) {
        v = c;
        continue;
      }
      put(cloud, kept, rep, c);
      kept++;
    }
    if (v > 0) {
      writeVarint(w, rep);
      writeVarint(w, v);
      written++;
    }
  }
  commitCount(w, mark, written);
  writeVarint(w, <u64>kept);
  for (let k: usize = 0; k < kept; k++) {
    writeVarint(w, repAt(cloud, k));
    writeVarint(w, cntAt(cloud, k));
  }
}

/** Writes the union of two contexts, compacted. */
export function writeMergedContext(w: Writer, a: Context, b: Context): void {
  const vv = take((a.nvv + b.nvv) << 4);
  let n: usize = 0;
  let i: usize = 0;
  let j: usize = 0;
  while (i < a.nvv || j < b.nvv) {
    if (j >= b.nvv || (i < a.nvv && repAt(a.vv, i) < repAt(b.vv, j))) {
      put(vv, n++, repAt(a.vv, i), cntAt(a.vv, i));
      i++;
    } else if (i >= a.nvv || repAt(b.vv, j) < repAt(a.vv, i)) {
      put(vv, n++, repAt(b.vv, j), cntAt(b.vv, j));
      j++;
    } else {
      const x = cntAt(a.vv, i);
      const y = cntAt(b.vv, j);
      put(vv, n++, repAt(a.vv, i), x > y ? x : y);
      i++;
      j++;
    }
  }
  const cloud = take((a.ncloud + b.ncloud) << 4);
  let m: usize = 0;
  i = 0;
  j = 0;
  while (i < a.ncloud || j < b.ncloud) {
    let takeA: bool;
    let takeB: bool;
    if (j >= b.ncloud) {
      takeA = true;
      takeB = false;
    } else if (i >= a.ncloud) {
      takeA = false;
      takeB = true;
    } else {
      const ra = repAt(a.cloud, i);
      const rb = repAt(b.cloud, j);
      const ca = cntAt(a.cloud, i);
      const cb = cntAt(b.cloud, j);
      takeA = ra < rb || (ra == rb && ca <= cb);
      takeB = rb < ra || (ra == rb && cb <= ca);
    }
    if (takeA) {
      put(cloud, m++, repAt(a.cloud, i), cntAt(a.cloud, i));
      i++;
      if (takeB) j++;
    } else {
      put(cloud, m++, repAt(b.cloud, j), cntAt(b.cloud, j));
      j++;
    }
  }
  if (!ok()) return;
  writeCompact(w, vv, n, cloud, m);
}

/** Writes the context of a delta: exactly the given dots (sorted, duplicate-free), compacted. */
export function writeContextOfDots(w: Writer, dots: usize, n: usize): void {
  writeCompact(w, 0, 0, dots, n);
}

