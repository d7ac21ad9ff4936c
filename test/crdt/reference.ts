// Plain TypeScript reference merges of the CRDTs, used only by tests and the benchmark: written from the
// definitions (docs/crdt-format.md, "Semantics of merge") over the codec's data types, with no cleverness, to
// check the WebAssembly module against.
import { CausalContext, type Crdt, type Dot, GSet, type Key, type MapEntry, ORMap, ORSet, PNCounter, SemanticState, VectorClock } from "../../lib/crdt/index.js";

const dotKey = (d: Dot): string => `${d.replica}:${d.counter}`;

/** Union of the seen dots: version vectors by maximum, clouds by union, then the cloud absorbed where contiguous. */
export function mergeContexts(a: CausalContext, b: CausalContext): CausalContext {
  const out = new CausalContext();
  for (const [r, c] of [...a.vv, ...b.vv]) out.vv.set(r, Math.max(out.vv.get(r) ?? 0, c));
  const cloud = new Map<number, Set<number>>();
  for (const src of [a.cloud, b.cloud]) {
    for (const [r, s] of src) for (const c of s) (cloud.get(r) ?? cloud.set(r, new Set()).get(r)!).add(c);
  }
  for (const [r, s] of cloud) {
    let v = out.vv.get(r) ?? 0;
    const kept: number[] = [];
    for (const c of [...s].sort((x, y) => x - y)) {
      if (c <= v) continue;
      if (c === v + 1 && kept.length === 0) v = c;
      else kept.push(c);
    }
    if (v > 0) out.vv.set(r, v);
    if (kept.length > 0) out.cloud.set(r, new Set(kept));
  }
  return out;
}

/** The dots of one key after the merge: held by both, or held by one and unseen by the other. */
function mergeDots<D extends Dot>(da: readonly D[], db: readonly D[], ca: CausalContext, cb: CausalContext, pick: (x: D, y: D) => D): D[] {
  const inB = new Map(db.map((d) => [dotKey(d), d]));
  const inA = new Set(da.map(dotKey));
  const out: D[] = [];
  for (const d of da) {
    const other = inB.get(dotKey(d));
    if (other) out.push(pick(d, other));
    else if (!cb.contains(d.replica, d.counter)) out.push(d);
  }
  for (const d of db) if (!inA.has(dotKey(d)) && !ca.contains(d.replica, d.counter)) out.push(d);
  return out.sort((x, y) => x.replica - y.replica || x.counter - y.counter);
}

function mergeEntries<D extends Dot>(a: Map<Key, D[]>, ca: CausalContext, b: Map<Key, D[]>, cb: CausalContext, pick: (x: D, y: D) => D): Map<Key, D[]> {
  const out = new Map<Key, D[]>();
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const dots = mergeDots(a.get(key) ?? [], b.get(key) ?? [], ca, cb, pick);
    if (dots.length > 0) out.set(key, dots);
  }
  return out;
}

export function mergeORSet(a: ORSet, b: ORSet): ORSet {
  return new ORSet(mergeContexts(a.context, b.context), mergeEntries(a.entries, a.context, b.entries, b.context, (x) => x));
}

function compareValues(x: Uint8Array, y: Uint8Array): number {
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/** One dot with two payloads (only a faulty replica makes that): the larger timestamp, then the larger value. */
function pickPayload(x: MapEntry, y: MapEntry): MapEntry {
  if (x.timestamp !== y.timestamp) return x.timestamp > y.timestamp ? x : y;
  return compareValues(x.value, y.value) >= 0 ? x : y;
}

export function mergeORMap(a: ORMap, b: ORMap): ORMap {
  return new ORMap(mergeContexts(a.context, b.context), mergeEntries(a.entries, a.context, b.entries, b.context, pickPayload));
}

export function mergeGSet(a: GSet, b: GSet): GSet {
  return new GSet(new Set([...a.items, ...b.items]));
}

export function mergePNCounter(a: PNCounter, b: PNCounter): PNCounter {
  const out = new Map(a.entries);
  for (const [r, e] of b.entries) {
    const o = out.get(r);
    out.set(r, o ? { p: Math.max(o.p, e.p), n: Math.max(o.n, e.n) } : e);
  }
  return new PNCounter(out);
}

export function mergeVectorClock(a: VectorClock, b: VectorClock): VectorClock {
  const out = new Map(a.entries);
  for (const [r, c] of b.entries) out.set(r, Math.max(out.get(r) ?? 0, c));
  return new VectorClock(out);
}

export function mergeSemantic(a: SemanticState, b: SemanticState): SemanticState {
  return new SemanticState(
    mergeGSet(a.imageEmbeddings, b.imageEmbeddings),
    mergeORMap(a.contentMappings, b.contentMappings),
    mergePNCounter(a.agentLoads, b.agentLoads),
    mergeORSet(a.taskQueue, b.taskQueue),
  );
}

/** The merge of two CRDTs of the same type. */
export function mergeCrdt<T extends Crdt>(a: T, b: T): T {
  if (a instanceof GSet && b instanceof GSet) return mergeGSet(a, b) as T;
  if (a instanceof PNCounter && b instanceof PNCounter) return mergePNCounter(a, b) as T;
  if (a instanceof ORSet && b instanceof ORSet) return mergeORSet(a, b) as T;
  if (a instanceof ORMap && b instanceof ORMap) return mergeORMap(a, b) as T;
  if (a instanceof VectorClock && b instanceof VectorClock) return mergeVectorClock(a, b) as T;
  if (a instanceof SemanticState && b instanceof SemanticState) return mergeSemantic(a, b) as T;
  throw new Error("merge of different CRDT types");
}
