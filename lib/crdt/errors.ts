// Error codes and messages of the CRDT format (docs/crdt-format.md): the only place they are written on the
// TypeScript side. The WebAssembly module has the same table in assembly/crdt/errors.ts; a test checks that the
// two agree.

export const CrdtErrorCode = {
  TRUNCATED: 1,
  BAD_MAGIC: 2,
  BAD_VERSION: 3,
  BAD_TYPE: 4,
  TYPE_MISMATCH: 5,
  OVERLONG_VARINT: 6,
  OUT_OF_RANGE: 7,
  NOT_SORTED: 8,
  ZERO: 9,
  NOT_COMPACT: 10,
  DOT_NOT_IN_CONTEXT: 11,
  TRAILING_BYTES: 12,
  OVERFLOW: 13,
  BAD_ARGUMENT: 14,
  OUT_OF_MEMORY: 15,
  INTERNAL: 16,
} as const;

export type CrdtErrorCode = (typeof CrdtErrorCode)[keyof typeof CrdtErrorCode];

export const CRDT_ERROR_MESSAGES: Readonly<Record<CrdtErrorCode, string>> = {
  1: "the input ends inside a field, or a count or length exceeds the bytes that remain",
  2: "not a CRDT encoding (bad magic bytes)",
  3: "unsupported CRDT format version",
  4: "unknown CRDT type",
  5: "the inputs are CRDTs of different types",
  6: "a varint is not minimal or is longer than 10 bytes",
  7: "an integer is out of range (above 2^53 - 1, or a replica above 2^32 - 1)",
  8: "a list is not strictly increasing",
  9: "a zero counter, an empty PN-Counter entry or an empty dot list",
  10: "a cloud dot is covered or absorbed by the version vector",
  11: "a dot is missing from its own causal context",
  12: "bytes follow the end of the body",
  13: "a counter would exceed 2^53 - 1",
  14: "an argument is out of range",
  15: "the input does not fit in the module's memory",
  16: "internal error: output bound exceeded",
};

/**
 * A rejected encoding or operation. `offset` is the first byte of the field at fault and `input` which input of a
 * merge it is in (0 or 1); both are 0 for errors that are not about bytes.
 *
 * @example
 * try { decode(bytes) } catch (err) { if (err instanceof CrdtError && err.code === CrdtErrorCode.TRUNCATED) ... }
 */
export class CrdtError extends Error {
  override readonly name = "CrdtError";
  readonly code: CrdtErrorCode;
  readonly offset: number;
  readonly input: number;

  constructor(code: CrdtErrorCode, offset = 0, input = 0) {
    super(`${CRDT_ERROR_MESSAGES[code] ?? "unknown error"} (code ${code}, input ${input}, offset ${offset})`);
    this.code = code;
    this.offset = offset;
    this.input = input;
  }
}
