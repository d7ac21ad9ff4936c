// Encoding and decoding of whole messages: header (magic, version, type), then the type's body.
import { ByteReader, ByteWriter } from "./bytes.js";
import { CrdtErrorCode } from "./errors.js";
import { CrdtType, FORMAT_VERSION, MAGIC } from "./format.js";
import { GSet } from "./gset.js";
import { ORMap } from "./ormap.js";
import { ORSet } from "./orset.js";
import { PNCounter } from "./pncounter.js";
import { SemanticState } from "./semantic.js";
import { VectorClock } from "./vclock.js";

export type Crdt = GSet | PNCounter | ORSet | ORMap | VectorClock | SemanticState;

type CrdtClass<T extends Crdt> = { readonly type: CrdtType; readBody(r: ByteReader): T };

const CLASSES: Readonly<Record<CrdtType, CrdtClass<Crdt>>> = {
  [CrdtType.GSet]: GSet,
  [CrdtType.PNCounter]: PNCounter,
  [CrdtType.ORSet]: ORSet,
  [CrdtType.ORMap]: ORMap,
  [CrdtType.VectorClock]: VectorClock,
  [CrdtType.SemanticState]: SemanticState,
};

export function typeOfCrdt(x: Crdt): CrdtType {
  return (x.constructor as unknown as CrdtClass<Crdt>).type;
}

/**
 * The canonical encoding of a state or delta (docs/crdt-format.md).
 *
 * @example
 * const bytes = encode(queue); const again = decode(bytes);
 */
export function encode(x: Crdt): Uint8Array {
  const w = new ByteWriter(1024);
  w.byte(MAGIC[0]);
  w.byte(MAGIC[1]);
  w.byte(FORMAT_VERSION);
  w.byte(typeOfCrdt(x));
  x.writeBody(w);
  return w.finish();
}

/** Reads and checks the header; returns the type. */
export function readHeader(r: ByteReader): CrdtType {
  const b = r.bytes;
  if (b.length < 2) r.fail(CrdtErrorCode.TRUNCATED, 0);
  if (b[0] !== MAGIC[0] || b[1] !== MAGIC[1]) r.fail(CrdtErrorCode.BAD_MAGIC, 0);
  if (b.length < 3) r.fail(CrdtErrorCode.TRUNCATED, 2);
  if (b[2] !== FORMAT_VERSION) r.fail(CrdtErrorCode.BAD_VERSION, 2);
  if (b.length < 4) r.fail(CrdtErrorCode.TRUNCATED, 3);
  const t = b[3]!;
  if (t < CrdtType.GSet || t > CrdtType.SemanticState) r.fail(CrdtErrorCode.BAD_TYPE, 3);
  r.pos = 4;
  return t as CrdtType;
}

/** Decodes and checks an encoding; throws `CrdtError` on malformed input. */
export function decode(bytes: Uint8Array): Crdt {
  const r = new ByteReader(bytes);
  const t = readHeader(r);
  const x = CLASSES[t].readBody(r);
  if (r.pos !== r.end) r.fail(CrdtErrorCode.TRAILING_BYTES, r.pos);
  return x;
}

/**
 * Decodes an encoding that must be of one type.
 *
 * @example
 * const queue = decodeAs(bytes, ORSet);
 */
export function decodeAs<T extends Crdt>(bytes: Uint8Array, cls: CrdtClass<T>): T {
  const r = new ByteReader(bytes);
  const t = readHeader(r);
  if (t !== cls.type) r.fail(CrdtErrorCode.TYPE_MISMATCH, 3);
  const x = cls.readBody(r);
  if (r.pos !== r.end) r.fail(CrdtErrorCode.TRAILING_BYTES, r.pos);
  return x;
}

/** The type of an encoding, from its header alone. */
export function typeOf(bytes: Uint8Array): CrdtType {
  return readHeader(new ByteReader(bytes));
}

