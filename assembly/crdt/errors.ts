// Error codes and messages of the CRDT module: the only place they are written on the AssemblyScript side.
// The TypeScript codec has the same table in src/crdt/errors.ts (a test checks that the two agree), and
// docs/crdt-format.md documents them.

export const E_TRUNCATED: i32 = 1;
export const E_BAD_MAGIC: i32 = 2;
export const E_BAD_VERSION: i32 = 3;
export const E_BAD_TYPE: i32 = 4;
export const E_TYPE_MISMATCH: i32 = 5;
export const E_OVERLONG_VARINT: i32 = 6;
export const E_OUT_OF_RANGE: i32 = 7;
export const E_NOT_SORTED: i32 = 8;
export const E_ZERO: i32 = 9;
export const E_NOT_COMPACT: i32 = 10;
export const E_DOT_NOT_IN_CONTEXT: i32 = 11;
export const E_TRAILING_BYTES: i32 = 12;
export const E_OVERFLOW: i32 = 13;
export const E_BAD_ARGUMENT: i32 = 14;
export const E_OUT_OF_MEMORY: i32 = 15;
export const E_INTERNAL: i32 = 16;

export const ERROR_CODE_MAX: i32 = 16;

/** The message of an error code (the same text as the TypeScript codec's). */
export function errorText(code: i32): string {
  switch (code) {
    case E_TRUNCATED: return "the input ends inside a field, or a count or length exceeds the bytes that remain";
    case E_BAD_MAGIC: return "not a CRDT encoding (bad magic bytes)";
    case E_BAD_VERSION: return "unsupported CRDT format version";
    case E_BAD_TYPE: return "unknown CRDT type";
    case E_TYPE_MISMATCH: return "the inputs are CRDTs of different types";
    case E_OVERLONG_VARINT: return "a varint is not minimal or is longer than 10 bytes";
    case E_OUT_OF_RANGE: return "an integer is out of range (above 2^53 - 1, or a replica above 2^32 - 1)";
    case E_NOT_SORTED: return "a list is not strictly increasing";
    case E_ZERO: return "a zero counter, an empty PN-Counter entry or an empty dot list";
    case E_NOT_COMPACT: return "a cloud dot is covered or absorbed by the version vector";
    case E_DOT_NOT_IN_CONTEXT: return "a dot is missing from its own causal context";
    case E_TRAILING_BYTES: return "bytes follow the end of the body";
    case E_OVERFLOW: return "a counter would exceed 2^53 - 1";
    case E_BAD_ARGUMENT: return "an argument is out of range";
    case E_OUT_OF_MEMORY: return "the input does not fit in the module's memory";
    case E_INTERNAL: return "internal error: output bound exceeded";
  }
  return "unknown error";
}
