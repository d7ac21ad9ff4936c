// The leak check: the debug build, compiled with rtrace (`--use ASC_RTRACE=1`), reports every block the allocator
// hands out and takes back and every store. After every call of random operation histories, on every type, no
// block is left and no store fell outside a live block; and the debug build computes what the release build does.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encode, ORSet } from "../../lib/crdt";
import { history, KINDS, runWasm } from "./harness";
import { crdtWasm, debugCrdt } from "./wasm";

describe.each(KINDS.map((k) => [k.name, k] as const))("memory of %s", (_name, kind) => {
  it("every block is freed after every call, and every store lands in a live block", () => {
    const { wasm, trace } = debugCrdt();
    fc.assert(
      fc.property(history(kind, 20), (steps) => {
        const debugRun = runWasm(kind, wasm, steps, () => {
          expect(trace.live).toBe(0);
          expect(trace.errors).toEqual([]);
        });
        expect(debugRun.states).toEqual(runWasm(kind, crdtWasm(), steps).states);
      }),
      { numRuns: 20 },
    );
    expect(trace.allocations).toBe(trace.frees);
  });
});

describe("memory", () => {
  it("stays flat over repeated merges: freed blocks are reused", () => {
    const { wasm, trace } = debugCrdt();
    let s = encode(new ORSet());
    for (let i = 0; i < 300; i++) s = wasm.orsetAdd(s, `task-${i}`, 1).state;
    const grown = wasm.memoryBytes;
    for (let round = 0; round < 20; round++) expect(wasm.merge(s, s)).toEqual(s);
    expect(wasm.memoryBytes).toBe(grown);
    expect(trace.live).toBe(0);
  });
});
