// Per-call state of the module: the first error of the call, the result length, and the temporary blocks.
// Nothing outlives an exported call except the result block, which the host frees: every other block taken
// with `take` is given back by `releaseAll` on success and on error alike, so a rejected input leaks nothing.
import { E_INTERNAL } from "./errors";

export let errCode: i32 = 0;
export let errOffset: i32 = 0;
export let errInput: i32 = 0;
export let resultLen: usize = 0;

const MAX_BLOCKS: i32 = 256; // a call takes at most about 20
const blocks: usize = memory.data(MAX_BLOCKS * 4);
let nblocks: i32 = 0;

/** Starts an exported call: no error, no temporary blocks. */
export function begin(): void {
  errCode = 0;
  errOffset = 0;
  errInput = 0;
  resultLen = 0;
  nblocks = 0;
}

/** Records the first error of the call (later ones are consequences of it). */
export function setError(code: i32, offset: i32, input: i32): void {
  if (errCode == 0) {
    errCode = code;
    errOffset = offset;
    errInput = input;
  }
}

/** A temporary block, freed by `releaseAll`. */
export function take(size: usize): usize {
  if (nblocks >= MAX_BLOCKS) {
    setError(E_INTERNAL, 0, 0);
    return 0;
  }
  const ptr = heap.alloc(size > 0 ? size : 1);
  store<usize>(blocks + (<usize>nblocks << 2), ptr);
  nblocks++;
  return ptr;
}

/** Grows a temporary block taken with `take`. */
export function grow(ptr: usize, size: usize): usize {
  for (let i = 0; i < nblocks; i++) {
    const at = blocks + (<usize>i << 2);
    if (load<usize>(at) == ptr) {
      const next = heap.realloc(ptr, size);
      store<usize>(at, next);
      return next;
    }
  }
  setError(E_INTERNAL, 0, 0);
  return ptr;
}

/** Removes a block from the temporary ones: it becomes the caller's (the result). */
export function keep(ptr: usize): void {
  for (let i = 0; i < nblocks; i++) {
    const at = blocks + (<usize>i << 2);
    if (load<usize>(at) == ptr) {
      nblocks--;
      store<usize>(at, load<usize>(blocks + (<usize>nblocks << 2)));
      return;
    }
  }
}

/** Frees every temporary block of the call. */
export function releaseAll(): void {
  for (let i = 0; i < nblocks; i++) heap.free(load<usize>(blocks + (<usize>i << 2)));
  nblocks = 0;
}
