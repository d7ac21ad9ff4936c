// Explicit memory management. Every block this module allocates goes through `allocate` / `release`, which
// count live bytes; every buffer handed to JavaScript and every corpus handle is entered in a registry, and every
// pointer or handle that comes back through an export is checked against it before it is used. A pointer that is
// not inside a live buffer, or a handle that is not a live corpus, is rejected with an error code: no export
// reads or writes memory it was not given.
//
// Out of memory: the allocator (TLSF of the minimal runtime) traps with `unreachable` when memory.grow fails at
// the module's maximumMemory. It does so before it changes any of its state, and this module allocates before it
// changes any of its own, so the instance stays consistent; `allocating` stays 1 after such a trap, which lets
// the loader tell an out-of-memory trap from any other and report E_OUT_OF_MEMORY.
import { MAX_ALLOCATIONS, MAX_ALLOCATION_BYTES } from "./limits";

export const REG_FREE: u32 = 0;
export const REG_BUFFER: u32 = 1;
export const REG_CORPUS: u32 = 2;

// Registry entries: { ptr: u32, bytes: u32, kind: u32, unused: u32 }.
const ENTRY: usize = 16;
const REGISTRY: usize = memory.data(<i32>(MAX_ALLOCATIONS * <i32>ENTRY), 16);
let registryEnd: i32 = 0; // one past the highest entry ever used
let liveEntries: i32 = 0;

export let usedBytes: u64 = 0;
export let liveBlocks: i32 = 0;
export let allocating: i32 = 0;

/** Allocates `bytes` (16-byte aligned). Traps only when memory cannot grow; see above. */
export function allocate(bytes: usize): usize {
  allocating = 1;
  let ptr = heap.alloc(bytes);
  allocating = 0;
  usedBytes += <u64>bytes;
  liveBlocks++;
  return ptr;
}

/** Grows a block from `oldBytes` to `newBytes`, keeping its contents (the old block stays valid on a trap). */
export function reallocate(ptr: usize, oldBytes: usize, newBytes: usize): usize {
  allocating = 1;
  let moved = heap.realloc(ptr, newBytes);
  allocating = 0;
  usedBytes += <u64>newBytes - <u64>oldBytes;
  return moved;
}

export function release(ptr: usize, bytes: usize): void {
  heap.free(ptr);
  usedBytes -= <u64>bytes;
  liveBlocks--;
}

/** Is an allocation of `bytes` within the per-block limit? */
export function validAllocationSize(bytes: u64): bool {
  return bytes >= 1 && bytes <= MAX_ALLOCATION_BYTES;
}

export function registryFull(): bool {
  return liveEntries >= MAX_ALLOCATIONS;
}

/** Enters a block; the caller has checked `registryFull()` first. */
export function register(ptr: usize, bytes: usize, kind: u32): void {
  for (let i = 0; i < MAX_ALLOCATIONS; i++) {
    let e = REGISTRY + <usize>i * ENTRY;
    if (load<u32>(e, 8) == REG_FREE) {
      store<u32>(e, <u32>ptr, 0);
      store<u32>(e, <u32>bytes, 4);
      store<u32>(e, kind, 8);
      if (i >= registryEnd) registryEnd = i + 1;
      liveEntries++;
      return;
    }
  }
}

/** Removes the entry of `ptr` of that kind; answers its size in bytes, or -1 if there is none. */
export function unregister(ptr: usize, kind: u32): i64 {
  let e = findExact(ptr, kind);
  if (e == 0) return -1;
  let bytes = load<u32>(e, 4);
  store<u32>(e, 0, 0);
  store<u32>(e, 0, 4);
  store<u32>(e, REG_FREE, 8);
  liveEntries--;
  return <i64>bytes;
}

function findExact(ptr: usize, kind: u32): usize {
  if (ptr == 0) return 0;
  for (let i = 0; i < registryEnd; i++) {
    let e = REGISTRY + <usize>i * ENTRY;
    if (load<u32>(e, 8) == kind && <usize>load<u32>(e, 0) == ptr) return e;
  }
  return 0;
}

/** Is `handle` a live corpus? */
export function isCorpus(handle: usize): bool {
  return findExact(handle, REG_CORPUS) != 0;
}

/** Does [ptr, ptr + bytes) lie inside one live buffer? */
export function inBuffer(ptr: usize, bytes: u64): bool {
  if (ptr == 0 || bytes == 0) return false;
  let end = <u64>ptr + bytes;
  for (let i = 0; i < registryEnd; i++) {
    let e = REGISTRY + <usize>i * ENTRY;
    if (load<u32>(e, 8) != REG_BUFFER) continue;
    let start = <u64>load<u32>(e, 0);
    if (<u64>ptr >= start && end <= start + <u64>load<u32>(e, 4)) return true;
  }
  return false;
}

export function registeredCount(): i32 {
  return liveEntries;
}
