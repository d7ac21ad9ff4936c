// Gossip to convergence after a partition, in one Node process, for `npm run bench:mesh` (bench/mesh.ts) and the
// Node tests (test/node/gossip-exchange.test.ts).
//
// The same code as the coordinators: the exchange (lib/gossip/exchange.ts: digest, answer, sections), the peer
// choice (lib/gossip/topology.ts) and the WebAssembly CRDT merge (build/crdt.wasm, through lib/wasm/crdt.ts). What
// differs: each replica keeps its whole state as one encoded blob instead of a coordinator's SQLite tables
// (durable-objects/pool-coordinator/gossip/store.ts), and the exchanges are function calls, not RPCs. Merge time is
// timed here with performance.now() around each Wasm merge (inside workerd the clock does not move during
// synchronous code); bytes are the digests (JSON) and the encoded sections that travel.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { decodeAs, encode, SemanticState } from "../lib/crdt/index.ts";
import { answer, digestBytes, digestOf, sectionsOf, type Merger } from "../lib/gossip/exchange.ts";
import { peersOf } from "../lib/gossip/topology.ts";
import { compileCrdtModule, CrdtWasm } from "../lib/wasm/crdt.ts";

export type Topology = "star" | "ring" | "mesh";

export interface GossipResult {
  topology: Topology;
  shards: number;
  /** Rounds after the partition healed until every replica had the same state (every replica runs once per round). */
  rounds: number;
  /** Bytes exchanged in those rounds. */
  bytes: number;
  /** Mean Wasm merge time per round, ms. */
  merge_ms: number;
}

/** A seeded PRNG (mulberry32), so a mesh's random peers are the same on every run of a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let wasm: CrdtWasm | null = null;
function crdt(): CrdtWasm {
  wasm ??= new CrdtWasm(compileCrdtModule(readFileSync(new URL("../build/crdt.wasm", import.meta.url))));
  return wasm;
}

/** Per-replica events of one side of the partition: queued tasks, a few mappings and embeddings, a load change. */
function feed(state: SemanticState, replica: number, tasks: number, seed: number): void {
  for (let i = 0; i < tasks; i++) state.enqueueTask(`task-${replica}-${seed}-${i}`, replica);
  for (let i = 0; i < Math.max(1, tasks / 10); i++) {
    state.updateMapping(`img-${replica}-${i}`, `task-${replica}-${i}:${"ab".repeat(16)}`, 1_000 + seed, replica);
    state.addEmbedding(`img-${replica}-${i}`, Array.from({ length: 16 }, (_, k) => Math.sin(replica + i + k)));
  }
  state.adjustLoad(replica, 100 + replica);
  if (tasks > 2) state.removeTask(`task-${replica}-${seed}-0`);
}

export interface SimulationOptions {
  topology: Topology;
  shards: number;
  /** Tasks each replica queues while partitioned (and a tenth as many mappings and embeddings). */
  tasks: number;
  seed: number;
  fanout?: number;
  /** Most rounds to wait for convergence. */
  maxRounds?: number;
}

/**
 * Two halves of the replicas are partitioned; each replica feeds its events and the halves run three rounds apart;
 * then the partition heals and rounds run until every replica holds the same state.
 */
export async function simulate(o: SimulationOptions): Promise<GossipResult> {
  const w = crdt();
  let mergeMs = 0;
  const merger: Merger = {
    merge: (a, b) => {
      const t0 = performance.now();
      const out = w.merge(a, b);
      mergeMs += performance.now() - t0;
      return out;
    },
  };
  const rnd = prng(o.seed);
  const ids = Array.from({ length: o.shards }, (_, i) => i);
  const replicaOf = (id: number) => id + 1;
  const states: Uint8Array[] = ids.map((id) => {
    const s = new SemanticState();
    feed(s, replicaOf(id), o.tasks, o.seed);
    return encode(s);
  });
  const half = Math.floor(o.shards / 2);
  let blocked = (a: number, b: number) => a < half !== b < half;
  let bytes = 0;
  const exchange = async (from: number, to: number): Promise<void> => {
    const mine = decodeAs(states[from]!, SemanticState);
    const digest = await digestOf(mine);
    bytes += digestBytes(digest);
    const theirs = decodeAs(states[to]!, SemanticState);
    const reply = answer(theirs, await digestOf(theirs), digest);
    if (reply.delta) {
      bytes += reply.delta.length;
      states[from] = merger.merge(states[from]!, reply.delta);
    }
    if (reply.want.length > 0) {
      const back = encode(sectionsOf(decodeAs(states[from]!, SemanticState), reply.want));
      bytes += back.length;
      states[to] = merger.merge(states[to]!, back);
    }
  };
  const round = async (): Promise<void> => {
    for (const id of ids) {
      const peers = peersOf(o.topology, ids, id, o.fanout ?? 2, rnd);
      for (const peer of peers) if (!blocked(id, peer)) await exchange(id, peer);
    }
  };
  for (let i = 0; i < 3; i++) await round();
  blocked = () => false;
  bytes = 0;
  mergeMs = 0;
  const hash = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  const limit = o.maxRounds ?? 200;
  let rounds = 0;
  while (new Set(states.map(hash)).size > 1) {
    if (++rounds > limit) throw new Error(`${o.topology} over ${o.shards} shards: not converged after ${limit} rounds`);
    await round();
  }
  return { topology: o.topology, shards: o.shards, rounds, bytes, merge_ms: rounds === 0 ? 0 : Math.round((mergeMs / rounds) * 1000) / 1000 };
}

/** Star, ring and mesh at 4, 16 and 64 shards (the topology `auto` would pick is the first of each size's). */
export async function gossipBench({ quick }: { quick: boolean }): Promise<GossipResult[]> {
  const out: GossipResult[] = [];
  for (const shards of [4, 16, 64]) {
    for (const topology of ["star", "ring", "mesh"] as const) {
      out.push(await simulate({ topology, shards, tasks: quick ? 20 : 100, seed: 7 }));
    }
  }
  return out;
}
