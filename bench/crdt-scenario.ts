// The equivalent merge of bench/crdt.ts, built the same way for the four implementations: two replicas diverge
// from a common state of N elements, each applies its own changes (the same operations in every implementation),
// and each implementation is timed on: decode both replicas' encodings, merge, encode the result. `logical*`
// read a merged encoding back into one plain form, so that the four results can be checked equal.
//
//   OR-Set      (task_queue)       Y.Map key -> replica         Automerge map key -> replica
//   OR-Map      (content_mappings) Y.Map key -> string          Automerge map key -> string
//   PN-Counter  (agent_loads)      Y.Map replica -> [p, n]      Automerge map replica -> { p, n }
//
// Every replica of the PN-Counter writes its own entry with its own Yjs client id / Automerge actor, as the
// mesh's coordinators would; in the sets and maps the common state comes from one replica (1) and the two
// diverging replicas are 2 and 3.
import * as Automerge from "@automerge/automerge";
import * as Y from "yjs";
import { decodeAs, encode, keyToText, ORMap, ORSet, PNCounter } from "../lib/crdt/index.ts";
import { mergePNCounter } from "../test/crdt/reference.ts";

export interface Pair {
  readonly a: Uint8Array;
  readonly b: Uint8Array;
}

export type Impl = "wasm" | "ts" | "yjs" | "automerge";

export interface Scenario {
  readonly name: string;
  /** elements of the common state (for the PN-Counter: replicas) */
  readonly elements: number;
  /** the changes each replica applied */
  readonly changes: number;
  /** the two replicas' encodings: ours (read by wasm and ts), Yjs updates, Automerge saves */
  readonly inputs: { readonly ours: Pair; readonly yjs: Pair; readonly automerge: Pair };
  /** the merged state in plain form, as each implementation's output decodes to it */
  readonly logical: Readonly<Record<"ours" | "yjs" | "automerge", (bytes: Uint8Array) => string>>;
  /** the merged state the plan implies, in the same plain form */
  readonly expected: string;
}

const pad = (i: number): string => String(i).padStart(6, "0");
const actor = (replica: number): string => replica.toString(16).padStart(8, "0");

/** One replica's changes, as operations any of the implementations can apply. */
interface Plan {
  readonly base: number;
  readonly removeA: number[];
  readonly removeB: number[];
  /** keys one replica writes again (set / add) while the other removes them: the write wins everywhere */
  readonly conflict: number[];
  readonly addA: string[];
  readonly addB: string[];
  readonly updateA: number[];
  readonly updateB: number[];
}

/** Per replica: 1% of the elements removed, 1% updated (maps), 1% added, and 0.1% write-versus-remove conflicts. */
function plan(n: number): Plan {
  const pick = (r: number, m = 100) => Array.from({ length: n }, (_, i) => i).filter((i) => i % m === r);
  const added = (who: string) => Array.from({ length: Math.floor(n / 100) }, (_, j) => `${who}-${pad(j)}`);
  return {
    base: n,
    removeA: pick(1),
    removeB: pick(51),
    conflict: pick(75, 1000),
    addA: added("new-a"),
    addB: added("new-b"),
    updateA: pick(0),
    updateB: pick(50),
  };
}

const T0 = 1_764_000_000_000;

/** OR-Set (task_queue). */
export function orsetScenario(n: number): Scenario {
  const p = plan(n);
  const task = (i: number): string => `task-${pad(i)}`;
  const present = new Set(Array.from({ length: n }, (_, i) => task(i)));
  for (const i of [...p.removeA, ...p.removeB]) present.delete(task(i));
  for (const k of [...p.addA, ...p.addB]) present.add(k);

  // ours
  const base = new ORSet();
  for (let i = 0; i < n; i++) base.add(task(i), 1);
  const baseBytes = encode(base);
  const replica = (id: number, removes: number[], adds: string[], conflictWrite: boolean): Uint8Array => {
    const s = decodeAs(baseBytes, ORSet);
    for (const i of removes) s.remove(task(i));
    for (const i of p.conflict) conflictWrite ? s.add(task(i), id) : s.remove(task(i));
    for (const k of adds) s.add(k, id);
    return encode(s);
  };
  const ours = { a: replica(2, p.removeA, p.addA, true), b: replica(3, p.removeB, p.addB, false) };

  // Yjs
  const ybase = new Y.Doc();
  ybase.clientID = 1;
  ybase.transact(() => {
    const m = ybase.getMap<number>("queue");
    for (let i = 0; i < n; i++) m.set(task(i), 1);
  });
  const ybaseUpdate = Y.encodeStateAsUpdate(ybase);
  const yreplica = (id: number, removes: number[], adds: string[], conflictWrite: boolean): Uint8Array => {
    const d = new Y.Doc();
    d.clientID = id;
    Y.applyUpdate(d, ybaseUpdate);
    d.transact(() => {
      const m = d.getMap<number>("queue");
      for (const i of removes) m.delete(task(i));
      for (const i of p.conflict) conflictWrite ? m.set(task(i), id) : m.delete(task(i));
      for (const k of adds) m.set(k, id);
    });
    return Y.encodeStateAsUpdate(d);
  };
  const yjs = { a: yreplica(2, p.removeA, p.addA, true), b: yreplica(3, p.removeB, p.addB, false) };

  // Automerge
  // (`from` with the whole object is Automerge's fastest way to write many keys; the same operations as a change)
  const initialQueue: Record<string, number> = {};
  for (let i = 0; i < n; i++) initialQueue[task(i)] = 1;
  const abaseBytes = Automerge.save(Automerge.from<{ queue: Record<string, number> }>({ queue: initialQueue }, { actor: actor(1) }));
  const areplica = (id: number, removes: number[], adds: string[], conflictWrite: boolean): Uint8Array => {
    let d = Automerge.load<{ queue: Record<string, number> }>(abaseBytes, { actor: actor(id) });
    d = Automerge.change(d, (x) => {
      for (const i of removes) delete x.queue[task(i)];
      for (const i of p.conflict) conflictWrite ? (x.queue[task(i)] = id) : delete x.queue[task(i)];
      for (const k of adds) x.queue[k] = id;
    });
    return Automerge.save(d);
  };
  const automerge = { a: areplica(2, p.removeA, p.addA, true), b: areplica(3, p.removeB, p.addB, false) };

  const plain = (keys: Iterable<string>): string => JSON.stringify([...keys].sort());
  return {
    name: "OR-Set",
    elements: n,
    changes: p.removeA.length + p.addA.length + p.conflict.length,
    inputs: { ours, yjs, automerge },
    logical: {
      ours: (bytes) => plain(decodeAs(bytes, ORSet).keys().map(keyToText)),
      yjs: (bytes) => {
        const d = new Y.Doc();
        Y.applyUpdate(d, bytes);
        return plain(d.getMap<number>("queue").keys());
      },
      automerge: (bytes) => plain(Object.keys(Automerge.load<{ queue: Record<string, number> }>(bytes).queue)),
    },
    expected: plain(present),
  };
}

/** OR-Map (content_mappings): image id -> content id. */
export function ormapScenario(n: number): Scenario {
  const p = plan(n);
  const key = (i: number): string => `img-${pad(i)}`;
  const value = (i: number, v: string): string => `content-${pad(i)}-${v}`;
  const expected = new Map(Array.from({ length: n }, (_, i) => [key(i), value(i, "v0")]));
  for (const i of p.updateA) expected.set(key(i), value(i, "a1"));
  for (const i of p.updateB) expected.set(key(i), value(i, "b1"));
  for (const i of p.conflict) expected.set(key(i), value(i, "a2"));
  for (const i of [...p.removeA, ...p.removeB]) expected.delete(key(i));
  for (const k of p.addA) expected.set(k, "a");
  for (const k of p.addB) expected.set(k, "b");

  interface Side {
    id: number;
    removes: number[];
    updates: number[];
    adds: string[];
    tag: string;
    conflictWrite: boolean;
  }
  const sides: [Side, Side] = [
    { id: 2, removes: p.removeA, updates: p.updateA, adds: p.addA, tag: "a", conflictWrite: true },
    { id: 3, removes: p.removeB, updates: p.updateB, adds: p.addB, tag: "b", conflictWrite: false },
  ];

  // ours
  const base = new ORMap();
  for (let i = 0; i < n; i++) base.set(key(i), value(i, "v0"), T0, 1);
  const baseBytes = encode(base);
  const replica = (s: Side): Uint8Array => {
    const m = decodeAs(baseBytes, ORMap);
    for (const i of s.updates) m.set(key(i), value(i, `${s.tag}1`), T0 + 1, s.id);
    for (const i of s.removes) m.remove(key(i));
    for (const i of p.conflict) s.conflictWrite ? m.set(key(i), value(i, `${s.tag}2`), T0 + 2, s.id) : m.remove(key(i));
    for (const k of s.adds) m.set(k, s.tag, T0 + 3, s.id);
    return encode(m);
  };
  const ours = { a: replica(sides[0]), b: replica(sides[1]) };

  // Yjs
  const ybase = new Y.Doc();
  ybase.clientID = 1;
  ybase.transact(() => {
    const m = ybase.getMap<string>("mappings");
    for (let i = 0; i < n; i++) m.set(key(i), value(i, "v0"));
  });
  const ybaseUpdate = Y.encodeStateAsUpdate(ybase);
  const yreplica = (s: Side): Uint8Array => {
    const d = new Y.Doc();
    d.clientID = s.id;
    Y.applyUpdate(d, ybaseUpdate);
    d.transact(() => {
      const m = d.getMap<string>("mappings");
      for (const i of s.updates) m.set(key(i), value(i, `${s.tag}1`));
      for (const i of s.removes) m.delete(key(i));
      for (const i of p.conflict) s.conflictWrite ? m.set(key(i), value(i, `${s.tag}2`)) : m.delete(key(i));
      for (const k of s.adds) m.set(k, s.tag);
    });
    return Y.encodeStateAsUpdate(d);
  };
  const yjs = { a: yreplica(sides[0]), b: yreplica(sides[1]) };

  // Automerge
  type Doc = { mappings: Record<string, string> };
  const initialMappings: Record<string, string> = {};
  for (let i = 0; i < n; i++) initialMappings[key(i)] = value(i, "v0");
  const abaseBytes = Automerge.save(Automerge.from<Doc>({ mappings: initialMappings }, { actor: actor(1) }));
  const areplica = (s: Side): Uint8Array => {
    let d = Automerge.load<Doc>(abaseBytes, { actor: actor(s.id) });
    d = Automerge.change(d, (x) => {
      for (const i of s.updates) x.mappings[key(i)] = value(i, `${s.tag}1`);
      for (const i of s.removes) delete x.mappings[key(i)];
      for (const i of p.conflict) s.conflictWrite ? (x.mappings[key(i)] = value(i, `${s.tag}2`)) : delete x.mappings[key(i)];
      for (const k of s.adds) x.mappings[k] = s.tag;
    });
    return Automerge.save(d);
  };
  const automerge = { a: areplica(sides[0]), b: areplica(sides[1]) };

  const plain = (entries: Iterable<[string, string]>): string => JSON.stringify([...entries].sort((x, y) => (x[0] < y[0] ? -1 : 1)));
  return {
    name: "OR-Map",
    elements: n,
    changes: p.updateA.length + p.removeA.length + p.addA.length + p.conflict.length,
    inputs: { ours, yjs, automerge },
    logical: {
      ours: (bytes) => {
        const m = decodeAs(bytes, ORMap);
        return plain(m.keys().map((k) => [keyToText(k), m.getText(k) ?? ""] as [string, string]));
      },
      yjs: (bytes) => {
        const d = new Y.Doc();
        Y.applyUpdate(d, bytes);
        return plain(d.getMap<string>("mappings").entries());
      },
      automerge: (bytes) => plain(Object.entries(Automerge.load<Doc>(bytes).mappings)),
    },
    expected: plain(expected),
  };
}

/** PN-Counter (agent_loads) over `replicas` replicas; replica A has newer entries of the first half, B of the rest. */
export function pncounterScenario(replicas: number): Scenario {
  const ids = Array.from({ length: replicas }, (_, i) => i + 1);
  const first = (r: number) => ({ p: r * 10, n: r });
  const second = (r: number) => ({ p: r * 10 + 5, n: r + 2 });
  const half = (r: number) => (r <= replicas / 2 ? 0 : 1);

  // ours: each replica adds to its own entry; a side holds the newer entry of its half and the older of the rest
  const snapshots = ids.map((r) => {
    const c = new PNCounter();
    c.add(r, first(r).p);
    c.add(r, -first(r).n);
    const older = encode(c);
    c.add(r, second(r).p - first(r).p);
    c.add(r, -(second(r).n - first(r).n));
    return [older, encode(c)] as const;
  });
  const build = (side: number): Uint8Array =>
    encode(ids.reduce<PNCounter>((acc, r, i) => mergePNCounter(acc, decodeAs(snapshots[i]![half(r) === side ? 1 : 0], PNCounter)), new PNCounter()));
  const ours = { a: build(0), b: build(1) };

  // Yjs: one document (client id = replica) per replica
  type Pn = [number, number];
  const ydocs = ids.map((r) => {
    const d = new Y.Doc();
    d.clientID = r;
    return d;
  });
  const y1 = ydocs.map((d, i) => {
    d.getMap<Pn>("loads").set(String(ids[i]), [first(ids[i]!).p, first(ids[i]!).n]);
    return Y.encodeStateAsUpdate(d);
  });
  const y2 = ydocs.map((d, i) => {
    const before = Y.encodeStateVector(d);
    d.getMap<Pn>("loads").set(String(ids[i]), [second(ids[i]!).p, second(ids[i]!).n]);
    return Y.encodeStateAsUpdate(d, before);
  });
  const yside = (side: number): Uint8Array => {
    const d = new Y.Doc();
    d.clientID = 100_000 + side;
    for (const u of y1) Y.applyUpdate(d, u);
    ids.forEach((r, i) => half(r) === side && Y.applyUpdate(d, y2[i]!));
    return Y.encodeStateAsUpdate(d);
  };
  const yjs = { a: yside(0), b: yside(1) };

  // Automerge: one actor per replica
  type Doc = { loads: Record<string, { p: number; n: number }> };
  const root = Automerge.from<Doc>({ loads: {} }, { actor: actor(0xfffffff0) });
  const rootBytes = Automerge.save(root);
  const a1: Uint8Array[] = [];
  const a2: Uint8Array[] = [];
  for (const r of ids) {
    let d = Automerge.load<Doc>(rootBytes, { actor: actor(r) });
    d = Automerge.change(d, (x) => {
      x.loads[String(r)] = { ...first(r) };
    });
    a1.push(Automerge.getLastLocalChange(d)!);
    d = Automerge.change(d, (x) => {
      x.loads[String(r)]!.p = second(r).p;
      x.loads[String(r)]!.n = second(r).n;
    });
    a2.push(Automerge.getLastLocalChange(d)!);
  }
  const aside = (side: number): Uint8Array => {
    let d = Automerge.load<Doc>(rootBytes, { actor: actor(0xfffffff1 + side) });
    [d] = Automerge.applyChanges(d, a1);
    [d] = Automerge.applyChanges(
      d,
      a2.filter((_, i) => half(ids[i]!) === side),
    );
    return Automerge.save(d);
  };
  const automerge = { a: aside(0), b: aside(1) };

  const plain = (entries: Iterable<[number, number, number]>): string => JSON.stringify([...entries].sort((x, y) => x[0] - y[0]));
  return {
    name: "PN-Counter",
    elements: replicas,
    changes: Math.ceil(replicas / 2),
    inputs: { ours, yjs, automerge },
    logical: {
      ours: (bytes) => plain([...decodeAs(bytes, PNCounter).entries].map(([r, e]) => [r, e.p, e.n] as [number, number, number])),
      yjs: (bytes) => {
        const d = new Y.Doc();
        Y.applyUpdate(d, bytes);
        return plain([...d.getMap<Pn>("loads").entries()].map(([r, [pp, nn]]) => [Number(r), pp, nn] as [number, number, number]));
      },
      automerge: (bytes) => plain(Object.entries(Automerge.load<Doc>(bytes).loads).map(([r, e]) => [Number(r), e.p, e.n] as [number, number, number])),
    },
    expected: plain(ids.map((r) => [r, second(r).p, second(r).n] as [number, number, number])),
  };
}
