// Malformed and truncated encodings are rejected with an error, never a trap: the module and the codec reject the
// same input with the same code at the same offset, and after any rejection the module still gives right answers
// (checked on the release build, and on the debug build with every allocation and store traced).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CrdtError, CrdtErrorCode, type Crdt, decode, encode, GSet, ORSet, PNCounter, VectorClock } from "../../lib/crdt";
import type { CrdtWasm } from "../../lib/wasm/crdt";
import { hex, KINDS, RANDOM_STATES } from "./harness";
import { mergeCrdt } from "./reference";
import { crdtWasm, debugCrdt } from "./wasm";

type Outcome = { ok: true; bytes: string } | { ok: false; code: number; offset: number; input: number };

function outcome(fn: () => Uint8Array | Crdt | number | string): Outcome {
  try {
    const x = fn();
    return { ok: true, bytes: x instanceof Uint8Array ? hex(x) : typeof x === "object" ? hex(encode(x)) : String(x) };
  } catch (err) {
    if (!(err instanceof CrdtError)) throw err;
    return { ok: false, code: err.code, offset: err.offset, input: err.input };
  }
}

const unhex = (s: string): Uint8Array => new Uint8Array(s.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), byte: fc.oneof(fc.nat({ max: 255 }), fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xff)) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(bytes: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let b = Array.from(bytes);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % (b.length + (m.kind === "insert" ? 1 : 0));
    if (m.kind === "truncate") b = b.slice(0, at);
    else if (m.kind === "set" && b.length > 0) b[at] = m.byte;
    else if (m.kind === "insert") b.splice(at, 0, m.byte);
    else if (m.kind === "delete") b.splice(at, 1);
  }
  return new Uint8Array(b);
}

const anyState = fc.oneof(...KINDS.map((k) => RANDOM_STATES[k.name]!));

/** A right answer to compare with after each rejection. */
const probeA = new ORSet();
probeA.add("p", 1);
const probeB = new ORSet();
probeB.add("q", 2);
const PROBE = hex(encode(mergeCrdt(probeA, probeB)));

function stillRight(wasm: CrdtWasm): void {
  expect(hex(wasm.merge(encode(probeA), encode(probeB)))).toBe(PROBE);
}

describe("malformed input", () => {
  it("the module and the codec reject the same mutated encodings the same way, and accept only canonical ones", () => {
    const release = crdtWasm();
    const { wasm: debug, trace } = debugCrdt();
    fc.assert(
      fc.property(anyState, fc.array(mutation, { minLength: 1, maxLength: 3 }), (state, ms) => {
        const valid = encode(state);
        const bytes = mutate(valid, ms);
        const codec = outcome(() => decode(bytes));
        expect(outcome(() => release.validate(bytes))).toEqual(codec.ok ? { ok: true, bytes: String(bytes[3]) } : codec);
        expect(outcome(() => debug.validate(bytes))).toEqual(codec.ok ? { ok: true, bytes: String(bytes[3]) } : codec);
        if (codec.ok) {
          // what is accepted is canonical: it is exactly the codec's encoding of what it decodes to
          expect(codec.bytes).toBe(hex(bytes));
        } else if (bytes.length >= 4 && bytes[3] === valid[3]) {
          // as the second input of a merge: the same error, in input 1
          expect(outcome(() => release.merge(valid, bytes))).toEqual({ ...codec, input: 1 });
          expect(outcome(() => debug.merge(bytes, valid))).toEqual(codec);
        }
        stillRight(release);
        stillRight(debug);
        expect(trace.live).toBe(0);
        expect(trace.errors).toEqual([]);
      }),
      { numRuns: 400 },
    );
    expect(trace.allocations).toBeGreaterThan(0);
    expect(trace.stores).toBeGreaterThan(0);
  });

  it("every truncation of every type is rejected as truncated", () => {
    const wasm = crdtWasm();
    fc.assert(
      fc.property(anyState, (state) => {
        const bytes = encode(state);
        for (let n = 0; n < bytes.length; n++) {
          const cut = bytes.subarray(0, n);
          const codec = outcome(() => decode(cut));
          expect(codec).toMatchObject({ ok: false, code: CrdtErrorCode.TRUNCATED });
          expect(outcome(() => wasm.validate(cut))).toEqual(codec);
        }
        stillRight(wasm);
      }),
      { numRuns: 60 },
    );
  });

  it("varints of every length read alike, at the end of the input and followed by more bytes", () => {
    const wasm = crdtWasm();
    const leb = (v: bigint, extra: number): number[] => {
      const out: number[] = [];
      do {
        out.push(Number(v & 0x7fn) | 0x80);
        v >>= 7n;
      } while (v > 0n);
      for (let i = 0; i < extra; i++) out.push(0x80);
      out.push(0);
      // without padding, the last byte carries the value's top group, high bit clear
      if (extra === 0) {
        out.pop();
        out[out.length - 1]! &= 0x7f;
      }
      return out;
    };
    const varint = fc.oneof(
      fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 70n }), fc.nat({ max: 3 })).map(([v, extra]) => leb(v, extra)),
      fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 12 }),
    );
    fc.assert(
      fc.property(varint, fc.nat({ max: 12 }), (counter, padding) => {
        // a vector clock entry (replica 1, counter), then `padding` bytes of a second entry or of trailing garbage
        const bytes = new Uint8Array([0xda, 0xac, 0x01, 0x05, 0x01, 0x01, ...counter, ...Array.from({ length: padding }, () => 0x81)]);
        const codec = outcome(() => decode(bytes));
        expect(outcome(() => wasm.validate(bytes))).toEqual(codec.ok ? { ok: true, bytes: "5" } : codec);
      }),
      { numRuns: 500 },
    );
  });

  // One hand-made input per error code: [name, hex, code, offset]
  const CASES: readonly [string, string, CrdtErrorCode, number][] = [
    ["empty input", "", CrdtErrorCode.TRUNCATED, 0],
    ["header without a type", "daac01", CrdtErrorCode.TRUNCATED, 3],
    ["OR-Set without a body", "daac0103", CrdtErrorCode.TRUNCATED, 4],
    ["a count beyond the input", "daac0101 05 0161", CrdtErrorCode.TRUNCATED, 4],
    ["a length beyond the input", "daac0101 01 0561", CrdtErrorCode.TRUNCATED, 5],
    ["bad magic", "daad0101 00", CrdtErrorCode.BAD_MAGIC, 0],
    ["version 2", "daac0201 00", CrdtErrorCode.BAD_VERSION, 2],
    ["type 7", "daac0107 00", CrdtErrorCode.BAD_TYPE, 3],
    ["type 0", "daac0100 00", CrdtErrorCode.BAD_TYPE, 3],
    ["overlong varint", "daac0101 8000", CrdtErrorCode.OVERLONG_VARINT, 4],
    ["11-byte varint", "daac0101 8080808080808080808001", CrdtErrorCode.OVERLONG_VARINT, 4],
    ["replica 2^32", "daac0102 01 8080808010 01 00", CrdtErrorCode.OUT_OF_RANGE, 5],
    ["counter 2^53", "daac0102 01 01 8080808080808010 00", CrdtErrorCode.OUT_OF_RANGE, 6],
    ["varint of 2^64", "daac0101 80808080808080808002", CrdtErrorCode.OUT_OF_RANGE, 4],
    ["G-Set out of order", "daac0101 02 0162 0161", CrdtErrorCode.NOT_SORTED, 7],
    ["G-Set duplicate", "daac0101 02 0161 0161", CrdtErrorCode.NOT_SORTED, 7],
    ["PN-Counter replicas out of order", "daac0102 02 02 01 00 01 01 00", CrdtErrorCode.NOT_SORTED, 8],
    ["OR-Set dots out of order", "daac0103 01 0102 00 01 0161 02 0102 0101", CrdtErrorCode.NOT_SORTED, 14],
    ["vector clock counter 0", "daac0105 01 01 00", CrdtErrorCode.ZERO, 6],
    ["PN-Counter entry 0/0", "daac0102 01 01 00 00", CrdtErrorCode.ZERO, 5],
    ["OR-Set element without dots", "daac0103 01 0101 00 01 0161 00", CrdtErrorCode.ZERO, 11],
    ["cloud dot the vv absorbs", "daac0103 01 0101 01 0102 00", CrdtErrorCode.NOT_COMPACT, 8],
    ["cloud dot the vv covers", "daac0103 01 0103 01 0102 00", CrdtErrorCode.NOT_COMPACT, 8],
    ["dot not in the context", "daac0103 00 00 01 0161 01 0101", CrdtErrorCode.DOT_NOT_IN_CONTEXT, 10],
    ["OR-Map dot not in the context", "daac0104 01 0101 00 01 016b 01 0102 05 0176", CrdtErrorCode.DOT_NOT_IN_CONTEXT, 12],
    ["trailing byte", "daac0101 00 ff", CrdtErrorCode.TRAILING_BYTES, 5],
    ["semantic state missing its last section", "daac0106 00 000000 00", CrdtErrorCode.TRUNCATED, 9],
  ];

  it.each(CASES)("%s: code and offset alike in the module and the codec", (_name, input, code, offset) => {
    const { wasm, trace } = debugCrdt();
    const bytes = input === "" ? new Uint8Array(0) : unhex(input);
    const expected = { ok: false, code, offset, input: 0 };
    expect(outcome(() => decode(bytes))).toEqual(expected);
    expect(outcome(() => wasm.validate(bytes))).toEqual(expected);
    expect(outcome(() => crdtWasm().validate(bytes))).toEqual(expected);
    stillRight(wasm);
    expect(trace.live).toBe(0);
    expect(trace.errors).toEqual([]);
  });

  it("merge of two types, and operations on the wrong type, are type mismatches", () => {
    const wasm = crdtWasm();
    const g = encode(new GSet());
    const p = encode(new PNCounter());
    expect(outcome(() => wasm.merge(g, p))).toEqual({ ok: false, code: CrdtErrorCode.TYPE_MISMATCH, offset: 3, input: 1 });
    expect(outcome(() => wasm.orsetAdd(g, "x", 1).state)).toEqual({ ok: false, code: CrdtErrorCode.TYPE_MISMATCH, offset: 3, input: 0 });
    expect(outcome(() => wasm.compareClocks(encode(new VectorClock()), g))).toEqual({ ok: false, code: CrdtErrorCode.TYPE_MISMATCH, offset: 3, input: 1 });
  });

  it("out-of-range arguments and overflowing counters are rejected alike", () => {
    const wasm = crdtWasm();
    const counter = encode(new PNCounter());
    const err = (code: CrdtErrorCode) => ({ ok: false, code, offset: 0, input: 0 });
    for (const replica of [-1, 1.5, 2 ** 32, NaN]) {
      expect(outcome(() => wasm.pncounterAdd(counter, replica, 1).state)).toEqual(err(CrdtErrorCode.BAD_ARGUMENT));
      expect(outcome(() => new PNCounter().add(replica, 1))).toEqual(err(CrdtErrorCode.BAD_ARGUMENT));
      expect(outcome(() => wasm.orsetAdd(encode(new ORSet()), "x", replica).state)).toEqual(err(CrdtErrorCode.BAD_ARGUMENT));
      expect(outcome(() => new ORSet().add("x", replica))).toEqual(err(CrdtErrorCode.BAD_ARGUMENT));
    }
    for (const amount of [0, 0.5, 2 ** 53]) {
      expect(outcome(() => wasm.pncounterAdd(counter, 1, amount).state)).toEqual(err(CrdtErrorCode.BAD_ARGUMENT));
      expect(outcome(() => new PNCounter().add(1, amount))).toEqual(err(CrdtErrorCode.BAD_ARGUMENT));
    }
    const full = new PNCounter();
    full.add(1, Number.MAX_SAFE_INTEGER);
    expect(outcome(() => wasm.pncounterAdd(encode(full), 1, 1).state)).toEqual(err(CrdtErrorCode.OVERFLOW));
    expect(outcome(() => full.add(1, 1))).toEqual(err(CrdtErrorCode.OVERFLOW));
    const clock = new VectorClock(new Map([[1, Number.MAX_SAFE_INTEGER]]));
    expect(outcome(() => wasm.vclockTick(encode(clock), 1).state)).toEqual(err(CrdtErrorCode.OVERFLOW));
    expect(outcome(() => clock.tick(1))).toEqual(err(CrdtErrorCode.OVERFLOW));
    stillRight(wasm);
  });
});
