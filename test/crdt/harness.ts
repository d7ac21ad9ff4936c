// Random operation histories over a few replicas, run twice: on the codec's types with the reference merges, and
// on encodings with the WebAssembly module. Used by the property tests of test/crdt/.
import fc from "fast-check";
import {
  CausalContext,
  type Crdt,
  decode,
  encode,
  GSet,
  type Key,
  keyOf,
  type MapEntry,
  ORMap,
  ORSet,
  PNCounter,
  SemanticState,
  VectorClock,
} from "../../lib/crdt/index.js";
import type { CrdtWasm, Update } from "../../lib/wasm/crdt.js";
import { mergeCrdt } from "./reference.js";

/** Replica ids: small ones, and the largest, so that varints of several lengths appear. */
export const REPLICAS = [1, 2, 300, 0xffff_ffff] as const;

/** Elements and keys: a small alphabet (so that replicas collide), the empty string, bytes above 0x7f, long ones. */
export const element: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("a", "b", "c", "d", "e").map((s) => new TextEncoder().encode(s)) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 3, max: 0xff }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 60, maxLength: 140 }) },
);

const value = fc.oneof(fc.constantFrom("x", "y", "zz"), fc.uint8Array({ maxLength: 6 })).map((v) => (typeof v === "string" ? new TextEncoder().encode(v) : v));
const timestamp = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(Number.MAX_SAFE_INTEGER), fc.integer({ min: 0, max: 2 ** 40 }));
const amount = fc.oneof(fc.integer({ min: -5, max: 5 }).filter((n) => n !== 0), fc.constantFrom(1_000_000, -(2 ** 40)));

export type Op =
  | { readonly t: "gadd"; readonly e: Uint8Array }
  | { readonly t: "add"; readonly e: Uint8Array }
  | { readonly t: "rm"; readonly e: Uint8Array }
  | { readonly t: "set"; readonly k: Uint8Array; readonly v: Uint8Array; readonly ts: number }
  | { readonly t: "del"; readonly k: Uint8Array }
  | { readonly t: "inc"; readonly n: number }
  | { readonly t: "tick" }
  | { readonly t: "embed"; readonly id: string; readonly vector: number[] };

export interface CrdtKind {
  readonly name: string;
  empty(): Crdt;
  readonly op: fc.Arbitrary<Op>;
  /** Applies an operation to a codec state at a replica (mutating it); returns the delta. */
  apply(state: Crdt, op: Op, replica: number): Crdt;
  /** The same operation on an encoding, through the module. */
  applyWasm(wasm: CrdtWasm, state: Uint8Array, op: Op, replica: number): Update;
}

const add = element.map((e): Op => ({ t: "add", e }));
const rm = element.map((e): Op => ({ t: "rm", e }));
const set = fc.record({ k: element, v: value, ts: timestamp }).map((x): Op => ({ t: "set", ...x }));
const del = element.map((k): Op => ({ t: "del", k }));
const inc = amount.map((n): Op => ({ t: "inc", n }));
const embed = fc
  .record({ id: fc.constantFrom("img-1", "img-2", "img-é"), vector: fc.array(fc.float({ noNaN: true }), { maxLength: 4 }) })
  .map((x): Op => ({ t: "embed", ...x }));

function fail(op: Op): never {
  throw new Error(`operation ${op.t} does not apply to this type`);
}

/** Operations the module has no entry point for (the semantic state's) go through the codec and a merge. */
function viaCodec(kind: CrdtKind, wasm: CrdtWasm, state: Uint8Array, op: Op, replica: number): Update {
  const delta = encode(kind.apply(decode(state), op, replica));
  return { state: wasm.merge(state, delta), delta };
}

export const KINDS: readonly CrdtKind[] = [
  {
    name: "G-Set",
    empty: () => new GSet(),
    op: element.map((e): Op => ({ t: "gadd", e })),
    apply: (s, op) => (op.t === "gadd" && s instanceof GSet ? s.add(op.e) : fail(op)),
    applyWasm: (w, s, op) => (op.t === "gadd" ? w.gsetAdd(s, op.e) : fail(op)),
  },
  {
    name: "PN-Counter",
    empty: () => new PNCounter(),
    op: inc,
    apply: (s, op, r) => (op.t === "inc" && s instanceof PNCounter ? s.add(r, op.n) : fail(op)),
    applyWasm: (w, s, op, r) => (op.t === "inc" ? w.pncounterAdd(s, r, op.n) : fail(op)),
  },
  {
    name: "OR-Set",
    empty: () => new ORSet(),
    op: fc.oneof(add, rm),
    apply: (s, op, r) => {
      if (!(s instanceof ORSet)) return fail(op);
      return op.t === "add" ? s.add(op.e, r) : op.t === "rm" ? s.remove(op.e) : fail(op);
    },
    applyWasm: (w, s, op, r) => (op.t === "add" ? w.orsetAdd(s, op.e, r) : op.t === "rm" ? w.orsetRemove(s, op.e) : fail(op)),
  },
  {
    name: "OR-Map",
    empty: () => new ORMap(),
    op: fc.oneof({ weight: 3, arbitrary: set }, { weight: 1, arbitrary: del }),
    apply: (s, op, r) => {
      if (!(s instanceof ORMap)) return fail(op);
      return op.t === "set" ? s.set(op.k, op.v, op.ts, r) : op.t === "del" ? s.remove(op.k) : fail(op);
    },
    applyWasm: (w, s, op, r) => (op.t === "set" ? w.ormapSet(s, op.k, op.v, op.ts, r) : op.t === "del" ? w.ormapRemove(s, op.k) : fail(op)),
  },
  {
    name: "vector clock",
    empty: () => new VectorClock(),
    op: fc.constant<Op>({ t: "tick" }),
    apply: (s, op, r) => (op.t === "tick" && s instanceof VectorClock ? s.tick(r) : fail(op)),
    applyWasm: (w, s, op, r) => (op.t === "tick" ? w.vclockTick(s, r) : fail(op)),
  },
  {
    name: "semantic state",
    empty: () => new SemanticState(),
    op: fc.oneof(embed, set, del, inc, add, rm),
    apply: (s, op, r) => {
      if (!(s instanceof SemanticState)) return fail(op);
      switch (op.t) {
        case "embed":
          return s.addEmbedding(op.id, op.vector);
        case "set":
          return s.updateMapping(op.k, op.v, op.ts, r);
        case "del":
          return s.removeMapping(op.k);
        case "inc":
          return s.adjustLoad(r, op.n);
        case "add":
          return s.enqueueTask(op.e, r);
        case "rm":
          return s.removeTask(op.e);
        default:
          return fail(op);
      }
    },
    applyWasm(w, s, op, r) {
      return viaCodec(this, w, s, op, r);
    },
  },
];

export type Step =
  | { readonly kind: "op"; readonly at: number; readonly op: Op }
  | { readonly kind: "state"; readonly from: number; readonly to: number }
  | { readonly kind: "delta"; readonly from: number; readonly to: number; readonly pick: number };

export const REPLICA_COUNT = 3;

export function history(kind: CrdtKind, maxSteps = 30): fc.Arbitrary<Step[]> {
  const at = fc.integer({ min: 0, max: REPLICA_COUNT - 1 });
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant("op" as const), at, op: kind.op }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("state" as const), from: at, to: at }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("delta" as const), from: at, to: at, pick: fc.nat() }) },
  );
  return fc.array(step, { minLength: 4, maxLength: maxSteps, size: "max" });
}

/** Replica i of a history has id REPLICAS[i]. */
export function replicaId(i: number): number {
  return REPLICAS[i % REPLICAS.length]!;
}

export interface Run<S> {
  states: S[];
  /** every delta each replica produced, in order */
  deltas: S[][];
}

/** Runs a history on the codec's types with the reference merges. */
export function runReference(kind: CrdtKind, steps: readonly Step[]): Run<Crdt> {
  const states = Array.from({ length: REPLICA_COUNT }, () => kind.empty());
  const deltas: Crdt[][] = states.map(() => []);
  for (const s of steps) {
    if (s.kind === "op") {
      deltas[s.at]!.push(kind.apply(states[s.at]!, s.op, replicaId(s.at)));
    } else if (s.kind === "state") {
      states[s.to] = mergeCrdt(states[s.to]!, states[s.from]!);
    } else {
      const log = deltas[s.from]!;
      if (log.length > 0) states[s.to] = mergeCrdt(states[s.to]!, log[s.pick % log.length]!);
    }
  }
  return { states, deltas };
}

/** Runs a history on encodings through the module; `check` sees each step's states. */
export function runWasm(kind: CrdtKind, wasm: CrdtWasm, steps: readonly Step[], check?: (i: number, states: Uint8Array[]) => void): Run<Uint8Array> {
  const states = Array.from({ length: REPLICA_COUNT }, () => encode(kind.empty()));
  const deltas: Uint8Array[][] = states.map(() => []);
  steps.forEach((s, i) => {
    if (s.kind === "op") {
      const u = kind.applyWasm(wasm, states[s.at]!, s.op, replicaId(s.at));
      states[s.at] = u.state;
      deltas[s.at]!.push(u.delta);
    } else if (s.kind === "state") {
      states[s.to] = wasm.merge(states[s.to]!, states[s.from]!);
    } else {
      const log = deltas[s.from]!;
      if (log.length > 0) states[s.to] = wasm.merge(states[s.to]!, log[s.pick % log.length]!);
    }
    check?.(i, states);
  });
  return { states, deltas };
}

/** Arbitrary well-formed states of a dotted type (not only those histories reach): any dots seen, any held. */
function dottedState<D>(holds: fc.Arbitrary<D>, build: (ctx: CausalContext, entries: Map<Key, D[]>) => Crdt): fc.Arbitrary<Crdt> {
  return fc
    .record({
      seen: fc.uniqueArray(fc.record({ replica: fc.constantFrom(...REPLICAS), counter: fc.integer({ min: 1, max: 6 }) }), {
        selector: (d) => `${d.replica}:${d.counter}`,
        maxLength: 12,
      }),
      keys: fc.uniqueArray(element, { selector: (e) => keyOf(e), maxLength: 5 }),
      picks: fc.array(fc.array(fc.tuple(fc.nat(), holds), { minLength: 1, maxLength: 3 }), { minLength: 5, maxLength: 5 }),
    })
    .map(({ seen, keys, picks }) => {
      const ctx = CausalContext.ofDots(seen);
      const entries = new Map<Key, D[]>();
      if (seen.length > 0) {
        keys.forEach((k, i) => {
          const chosen = new Map<string, D & { replica: number; counter: number }>();
          for (const [n, h] of picks[i]!) {
            const d = seen[n % seen.length]!;
            chosen.set(`${d.replica}:${d.counter}`, { ...h, replica: d.replica, counter: d.counter });
          }
          entries.set(keyOf(k), [...chosen.values()].sort((x, y) => x.replica - y.replica || x.counter - y.counter));
        });
      }
      return build(ctx, entries);
    });
}

const payload = fc.record({ timestamp: fc.integer({ min: 0, max: 3 }), value });

export const orsetState = dottedState(fc.constant({}), (ctx, entries) => new ORSet(ctx, entries as unknown as Map<Key, { replica: number; counter: number }[]>));
export const ormapState = dottedState(payload, (ctx, entries) => new ORMap(ctx, entries as unknown as Map<Key, MapEntry[]>));

/** Arbitrary well-formed states of every type, by kind name. */
export const RANDOM_STATES: Readonly<Record<string, fc.Arbitrary<Crdt>>> = {
  "G-Set": fc.uniqueArray(element, { selector: keyOf, maxLength: 6 }).map((es) => new GSet(new Set(es.map(keyOf)))),
  "PN-Counter": fc
    .array(fc.tuple(fc.constantFrom(...REPLICAS), fc.nat({ max: 9 }), fc.nat({ max: 9 })), { maxLength: 4 })
    .map((es) => new PNCounter(new Map(es.filter(([, p, n]) => p + n > 0).map(([r, p, n]) => [r, { p, n }])))),
  "OR-Set": orsetState,
  "OR-Map": ormapState,
  "vector clock": fc
    .array(fc.tuple(fc.constantFrom(...REPLICAS), fc.integer({ min: 1, max: 9 })), { maxLength: 4 })
    .map((es) => new VectorClock(new Map(es))),
  "semantic state": fc
    .tuple(fc.uniqueArray(element, { selector: keyOf, maxLength: 3 }), ormapState, orsetState)
    .map(([g, m, s]) => new SemanticState(new GSet(new Set(g.map(keyOf))), m as ORMap, new PNCounter(new Map([[2, { p: 3, n: 1 }]])), s as ORSet)),
};

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
