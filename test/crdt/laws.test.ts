// The laws of merge, for every type, in the reference and in the WebAssembly module: commutative, associative,
// idempotent; replicas that exchange states or deltas in any order, duplicated, converge.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Crdt, decode, encode } from "../../lib/crdt";
import { history, KINDS, RANDOM_STATES, REPLICA_COUNT, runReference, runWasm } from "./harness";
import { mergeCrdt } from "./reference";
import { crdtWasm } from "./wasm";

const RUNS = 60;

/** Three encodings from a random history (states and deltas) or from the random well-formed states. */
function triples(kindIndex: number): fc.Arbitrary<[Uint8Array, Uint8Array, Uint8Array]> {
  const kind = KINDS[kindIndex]!;
  const fromHistory = fc.tuple(history(kind), fc.nat(), fc.nat(), fc.nat()).map(([steps, i, j, k]) => {
    const run = runReference(kind, steps);
    const pool = [...run.states, ...run.deltas.flat()].map((s) => encode(s));
    return [pool[i % pool.length]!, pool[j % pool.length]!, pool[k % pool.length]!] as [Uint8Array, Uint8Array, Uint8Array];
  });
  const random = RANDOM_STATES[kind.name]!;
  const fromRandom = fc.tuple(random, random, random).map(([a, b, c]) => [encode(a), encode(b), encode(c)] as [Uint8Array, Uint8Array, Uint8Array]);
  return fc.oneof(fromHistory, fromRandom);
}

describe.each(KINDS.map((k, i) => [k.name, i] as const))("merge of %s", (_name, kindIndex) => {
  const kind = KINDS[kindIndex]!;

  it("is commutative, associative and idempotent in the reference", () => {
    const ref = (a: Uint8Array, b: Uint8Array): Uint8Array => encode(mergeCrdt(decode(a), decode(b)));
    fc.assert(
      fc.property(triples(kindIndex), ([a, b, c]) => {
        expect(ref(a, b)).toEqual(ref(b, a));
        expect(ref(ref(a, b), c)).toEqual(ref(a, ref(b, c)));
        expect(ref(a, a)).toEqual(a);
      }),
      { numRuns: RUNS },
    );
  });

  it("is commutative, associative and idempotent in WebAssembly, and equals the reference", () => {
    const wasm = crdtWasm();
    fc.assert(
      fc.property(triples(kindIndex), ([a, b, c]) => {
        const ab = wasm.merge(a, b);
        expect(ab).toEqual(encode(mergeCrdt(decode(a), decode(b))));
        expect(wasm.merge(b, a)).toEqual(ab);
        expect(wasm.merge(ab, c)).toEqual(wasm.merge(a, wasm.merge(b, c)));
        expect(wasm.merge(a, a)).toEqual(a);
      }),
      { numRuns: RUNS },
    );
  });

  it("converges: replicas that receive every delta (or every state), in any order and some twice, end in the same state", () => {
    const wasm = crdtWasm();
    fc.assert(
      fc.property(history(kind, 25), fc.infiniteStream(fc.nat()), (steps, randoms) => {
        const run = runWasm(kind, wasm, steps);
        const ref = runReference(kind, steps);
        const all = run.deltas.flat();
        const finals = run.states.map((state) => {
          const order = [...all, ...all.slice(0, 3)];
          for (let i = order.length - 1; i > 0; i--) {
            const j = randoms.next().value % (i + 1);
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          return order.reduce((s, d) => wasm.merge(s, d), state);
        });
        // ... the same state as exchanging whole states, in any order, in the module and in the reference
        const whole = run.states.reduce((s, t) => wasm.merge(s, t));
        const shuffled = [...run.states].sort(() => (randoms.next().value % 2 === 0 ? -1 : 1));
        expect(shuffled.reduceRight((s, t) => wasm.merge(t, s))).toEqual(whole);
        let refWhole: Crdt = ref.states[0]!;
        for (let i = 1; i < REPLICA_COUNT; i++) refWhole = mergeCrdt(refWhole, ref.states[i]!);
        for (const f of finals) expect(f).toEqual(whole);
        expect(whole).toEqual(encode(refWhole));
      }),
      { numRuns: RUNS },
    );
  });
});
