// The CRDT module in Node, compiled from the same bytes the Worker imports: larger merges against the reference,
// the leak and bounds check of the debug build at that size, recovery from running out of memory, and the
// benchmark's equivalent merge (all four implementations reach the same state) at a small size.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ormapScenario, orsetScenario, pncounterScenario } from "../../bench/crdt-scenario.ts";
import { CrdtError, CrdtErrorCode, decode, decodeAs, encode, GSet, ORMap } from "../../lib/crdt/index.ts";
import { compileCrdtModule, CrdtWasm, MemoryTrace } from "../../lib/wasm/crdt.ts";
import { mergeCrdt } from "../crdt/reference.ts";

const release = compileCrdtModule(readFileSync(new URL("../../build/crdt.wasm", import.meta.url)));
const debug = compileCrdtModule(readFileSync(new URL("../../build/crdt.debug.wasm", import.meta.url)));

/** Two replicas of an OR-Map of n keys that diverged: each updated, removed and added 1% of the keys. */
function diverged(n: number): [Uint8Array, Uint8Array] {
  const base = new ORMap();
  for (let i = 0; i < n; i++) base.set(`img-${i}`, `content-${i}`, 1000, 1);
  const bytes = encode(base);
  return [2, 3].map((replica) => {
    const m = decodeAs(bytes, ORMap);
    for (let i = replica; i < n; i += 100) {
      m.set(`img-${i}`, `content-${i}-r${replica}`, 2000, replica);
      m.remove(`img-${i + 7}`);
      m.set(`new-${replica}-${i}`, "x", 3000, replica);
    }
    return encode(m);
  }) as [Uint8Array, Uint8Array];
}

describe("the CRDT module in Node", () => {
  it("merges 20,000-key OR-Maps exactly like the reference", () => {
    const wasm = new CrdtWasm(release);
    const [a, b] = diverged(20_000);
    const merged = wasm.merge(a, b);
    expect(merged).toEqual(encode(mergeCrdt(decode(a), decode(b))));
    expect(wasm.merge(b, a)).toEqual(merged);
    expect(wasm.merge(merged, a)).toEqual(merged);
  });

  it("frees every block and stores only inside live blocks (debug build, rtrace) at that size", () => {
    const trace = new MemoryTrace();
    const wasm = new CrdtWasm(debug, { trace });
    const [a, b] = diverged(20_000);
    const merged = wasm.merge(a, b);
    expect(merged).toEqual(new CrdtWasm(release).merge(a, b));
    expect(() => wasm.merge(a, b.subarray(0, b.length >> 1))).toThrow(CrdtError);
    wasm.ormapSet(merged, "img-5", "v", 9, 4);
    expect(trace.live).toBe(0);
    expect(trace.errors).toEqual([]);
    expect(trace.allocations).toBe(trace.frees);
    expect(trace.stores).toBeGreaterThan(100_000);
  });

  it("an input too large for the module's 64 MiB is OUT_OF_MEMORY, and a fresh instance carries on", () => {
    const wasm = new CrdtWasm(release);
    const huge = (fill: number): Uint8Array => {
      // a G-Set with one 40 MiB element
      const n = 40 * 2 ** 20;
      const bytes = new Uint8Array(4 + 1 + 4 + n);
      bytes.set([0xda, 0xac, 0x01, 0x01, 0x01, 0x80, 0x80, 0x80, 0x14]);
      bytes.fill(fill, 9);
      return bytes;
    };
    const a = huge(1);
    expect(wasm.validate(a)).toBe(1);
    expect(() => wasm.merge(a, huge(2))).toThrow(expect.objectContaining({ code: CrdtErrorCode.OUT_OF_MEMORY }));
    expect(wasm.replacements).toBe(1);
    const small = new GSet();
    small.add("x");
    expect(wasm.merge(encode(small), encode(new GSet()))).toEqual(encode(small));
  });
});

describe("the benchmark's equivalent merge", () => {
  it.each([
    ["OR-Set", () => orsetScenario(3000)],
    ["OR-Map", () => ormapScenario(3000)],
    ["PN-Counter", () => pncounterScenario(120)],
  ])("%s: the module, the reference, Yjs and Automerge merge to the planned state", async (_name, build) => {
    const Y = await import("yjs");
    const Automerge = await import("@automerge/automerge");
    const sc = build();
    const { ours, yjs, automerge } = sc.inputs;
    const wasm = new CrdtWasm(release).merge(ours.a, ours.b);
    expect(wasm).toEqual(encode(mergeCrdt(decode(ours.a), decode(ours.b))));
    expect(sc.logical.ours(wasm)).toBe(sc.expected);
    expect(sc.logical.yjs(Y.mergeUpdates([yjs.a, yjs.b]))).toBe(sc.expected);
    expect(sc.logical.automerge(Automerge.save(Automerge.loadIncremental(Automerge.load(automerge.a), automerge.b)))).toBe(sc.expected);
    // the two replicas really diverged: neither alone is the merged state
    expect(sc.logical.ours(ours.a)).not.toBe(sc.expected);
    expect(sc.logical.ours(ours.b)).not.toBe(sc.expected);
  });
});
