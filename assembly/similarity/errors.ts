// Error codes of the similarity module and their one canonical message each. Every export reports failure
// through one of these codes (read with `last_error()`), never by trapping; the loader in src/wasm/similarity.ts
// reads the messages from here with `error_message()`, so the text lives in this file only.

export const OK: i32 = 0;
export const E_DIMENSION: i32 = 1;
export const E_K: i32 = 2;
export const E_POINTER: i32 = 3;
export const E_HANDLE: i32 = 4;
export const E_KIND: i32 = 5;
export const E_METRIC: i32 = 6;
export const E_NONFINITE: i32 = 7;
export const E_SIZE: i32 = 8;
export const E_TOO_MANY_ALLOCATIONS: i32 = 9;
export const E_COUNT: i32 = 10;
export const E_INDEX: i32 = 11;
export const E_OUT_OF_MEMORY: i32 = 12;
export const E_CAPACITY: i32 = 13;
/** The highest code; the loader checks that it knows every code up to this one. */
export const LAST_CODE: i32 = 13;

export const M_OK = "ok";
export const M_DIMENSION = "dimension must be an integer from 1 to 4096";
export const M_K = "k must be from 1 to the number of vectors in the corpus, and at most 4096";
export const M_POINTER = "pointer range is not inside a live buffer allocated with alloc()";
export const M_HANDLE = "not a live corpus handle";
export const M_KIND = "kind must be 0 (float32) or 1 (int8)";
export const M_METRIC = "metric must be 0 (dot product) or 1 (cosine)";
export const M_NONFINITE = "vectors must not contain NaN or infinity";
export const M_SIZE = "allocation size must be from 1 byte to 1 GiB - 1 KiB";
export const M_TOO_MANY_ALLOCATIONS = "too many live allocations (at most 1024 buffers and corpora)";
export const M_COUNT = "count must be at least 1 (and at most 4096 queries per batch)";
export const M_INDEX = "index out of range";
export const M_OUT_OF_MEMORY = "out of memory: the module's maximum memory is reached";
export const M_CAPACITY = "a corpus holds at most 2^31 - 1 vectors";
export const M_UNKNOWN = "unknown error code";

export function messageOf(code: i32): string {
  switch (code) {
    case OK: return M_OK;
    case E_DIMENSION: return M_DIMENSION;
    case E_K: return M_K;
    case E_POINTER: return M_POINTER;
    case E_HANDLE: return M_HANDLE;
    case E_KIND: return M_KIND;
    case E_METRIC: return M_METRIC;
    case E_NONFINITE: return M_NONFINITE;
    case E_SIZE: return M_SIZE;
    case E_TOO_MANY_ALLOCATIONS: return M_TOO_MANY_ALLOCATIONS;
    case E_COUNT: return M_COUNT;
    case E_INDEX: return M_INDEX;
    case E_OUT_OF_MEMORY: return M_OUT_OF_MEMORY;
    case E_CAPACITY: return M_CAPACITY;
  }
  return M_UNKNOWN;
}
