// The WebAssembly module and the TypeScript codec agree byte for byte: the same operation histories give the same
// states and deltas; decode(encode(x)) = x; the same clock comparisons; the same error messages.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CRDT_ERROR_MESSAGES, CrdtErrorCode, decode, decodeAs, encode, ORMap, ORSet, VectorClock } from "../../lib/crdt";
import { history, KINDS, RANDOM_STATES, REPLICAS, runReference, runWasm } from "./harness";
import { crdtWasm } from "./wasm";

describe.each(KINDS.map((k) => [k.name, k] as const))("%s", (_name, kind) => {
  it("the module and the reference agree on random operation histories, step by step", () => {
    const wasm = crdtWasm();
    fc.assert(
      fc.property(history(kind), (steps) => {
        const ref = runReference(kind, steps);
        const run = runWasm(kind, wasm, steps);
        expect(run.states).toEqual(ref.states.map((s) => encode(s)));
        expect(run.deltas).toEqual(ref.deltas.map((ds) => ds.map((d) => encode(d))));
        // ... and at every step, not only at the end
        runWasm(kind, wasm, steps, (i, states) => {
          const prefix = runReference(kind, steps.slice(0, i + 1));
          expect(states).toEqual(prefix.states.map((s) => encode(s)));
        });
      }),
      { numRuns: 25 },
    );
  });

  it("decode(encode(x)) = x, and encode(decode(bytes)) = bytes", () => {
    const wasm = crdtWasm();
    fc.assert(
      fc.property(RANDOM_STATES[kind.name]!, (x) => {
        const bytes = encode(x);
        expect(decode(bytes)).toEqual(x);
        expect(encode(decode(bytes))).toEqual(bytes);
        expect(wasm.validate(bytes)).toBe(bytes[3]);
      }),
      { numRuns: 100 },
    );
  });
});

describe("vector clocks", () => {
  it("compare alike in the module and the codec", () => {
    const wasm = crdtWasm();
    const clock = fc.array(fc.tuple(fc.constantFrom(...REPLICAS), fc.integer({ min: 1, max: 3 })), { maxLength: 4 }).map((es) => new VectorClock(new Map(es)));
    fc.assert(
      fc.property(clock, clock, (a, b) => {
        const order = a.compare(b);
        expect(wasm.compareClocks(encode(a), encode(b))).toBe(order);
        const flipped = { before: "after", after: "before", equal: "equal", concurrent: "concurrent" }[order];
        expect(b.compare(a)).toBe(flipped);
      }),
    );
  });

  it("before, after, equal, concurrent", () => {
    const wasm = crdtWasm();
    const a = new VectorClock();
    a.tick(1);
    const b = decodeAs(encode(a), VectorClock);
    b.tick(2);
    const c = decodeAs(encode(a), VectorClock);
    c.tick(1);
    expect(wasm.compareClocks(encode(a), encode(b))).toBe("before");
    expect(wasm.compareClocks(encode(b), encode(a))).toBe("after");
    expect(wasm.compareClocks(encode(b), encode(b))).toBe("equal");
    expect(wasm.compareClocks(encode(b), encode(c))).toBe("concurrent");
    expect(decode(wasm.merge(encode(b), encode(c)))).toEqual(new VectorClock(new Map([[1, 2], [2, 1]])));
  });
});

describe("semantics", () => {
  it("OR-Set: a concurrent add wins over a remove; a remove of what was seen sticks; no tombstones stay", () => {
    const wasm = crdtWasm();
    const a = new ORSet();
    a.add("x", 1);
    const b = decodeAs(encode(a), ORSet);
    a.remove("x");
    b.add("x", 2);
    expect(decodeAs(wasm.merge(encode(a), encode(b)), ORSet).has("x")).toBe(true);
    const c = decodeAs(wasm.merge(encode(a), encode(b)), ORSet);
    c.remove("x");
    const merged = decodeAs(wasm.merge(encode(c), encode(b)), ORSet);
    expect(merged.has("x")).toBe(false);
    // the removal is only two version-vector entries: the encoding is as small as that of an empty set plus them
    expect(merged.context.cloud.size).toBe(0);
    expect([...merged.context.vv]).toEqual([[1, 1], [2, 1]]);
  });

  it("OR-Map: last writer wins by timestamp; concurrent writes are kept until a later write replaces them", () => {
    const wasm = crdtWasm();
    const a = new ORMap();
    const b = new ORMap();
    a.set("k", "old", 5, 1);
    b.set("k", "new", 9, 2);
    const m = decodeAs(wasm.merge(encode(a), encode(b)), ORMap);
    expect(m.getText("k")).toBe("new");
    expect(m.entries.get("k")).toHaveLength(2);
    m.set("k", "last", 1, 1); // seen both: replaces both, whatever its timestamp
    expect(m.entries.get("k")).toHaveLength(1);
    expect(decodeAs(wasm.merge(encode(m), encode(b)), ORMap).getText("k")).toBe("last");
  });

  it("the module's error messages are the codec's", () => {
    const wasm = crdtWasm();
    for (const code of Object.values(CrdtErrorCode)) expect(wasm.errorMessage(code)).toBe(CRDT_ERROR_MESSAGES[code]);
  });
});
