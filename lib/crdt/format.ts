// Constants of the CRDT binary format, version 1 (docs/crdt-format.md).

export const MAGIC = [0xda, 0xac] as const;
export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 4;

/** The type byte of each CRDT. */
export const CrdtType = {
  GSet: 1,
  PNCounter: 2,
  ORSet: 3,
  ORMap: 4,
  VectorClock: 5,
  SemanticState: 6,
} as const;

export type CrdtType = (typeof CrdtType)[keyof typeof CrdtType];

export const CRDT_TYPE_NAMES: Readonly<Record<CrdtType, keyof typeof CrdtType>> = {
  1: "GSet",
  2: "PNCounter",
  3: "ORSet",
  4: "ORMap",
  5: "VectorClock",
  6: "SemanticState",
};

/** 2^53 - 1: every integer of the format is at most this, so JavaScript numbers hold it exactly. */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Replica ids are 32-bit. */
export const MAX_REPLICA = 0xffff_ffff;

/** How a vector clock compares with another. */
export type ClockOrder = "equal" | "before" | "after" | "concurrent";
