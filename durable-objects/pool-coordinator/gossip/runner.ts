/**
 * Anti-entropy rounds of a pool shard (lib/gossip/exchange.ts): on its "gossip" timer (every `gossip.intervalMs`
 * while the pool has more than one shard that is not retired), after the commit, the shard sends its digest to the
 * peers of the round (lib/gossip/topology.ts: star below 4 active shards, ring up to 16, mesh of `fanout` random peers
 * above, unless the pool config names one), merges what each lacks-and-has answer brings, and sends back what the
 * peer lacks. Every merge runs in the WebAssembly CRDT module. A test hook (DAA_TEST_HOOKS=1) can drop the exchanges
 * with chosen shards, to partition the pool.
 */
import { decodeAs, encode, SemanticState } from "../../../lib/crdt/index.ts";
import { answer, digestBytes, digestOf, SECTIONS, sectionsOf, sha256, sizeOf, vclockOf, type Digest, type Merger, type Section } from "../../../lib/gossip/exchange.ts";
import { peersOf, topologyFor } from "../../../lib/gossip/topology.ts";
import type { SharedStateSummary } from "../../../contract/shard-rpc.ts";
import type { PoolCore } from "../core.ts";

export interface GossipPeer {
  gossipExchange(from: number, digest: Digest): Promise<{ delta: Uint8Array | null; want: Section[] } | null>;
  gossipPush(from: number, delta: Uint8Array): Promise<boolean>;
}

export interface GossipHost {
  core(): PoolCore | null;
  apply<T>(fn: (core: PoolCore, now: number) => T): { ok: true; value: T } | { ok: false };
  peer(shard: number): GossipPeer;
  wasm: Merger;
  random01(): number;
}


export class GossipRunner {
  /** Shards whose exchanges this shard drops (the partition test hook). */
  blocked = new Set<number>();
  private running: Promise<void> | null = null;
  private readonly wasm: Merger;

  constructor(private readonly host: GossipHost) {
    // Every merge of this shard goes through here, counted.
    this.wasm = { merge: (a, b) => (this.merges++, host.wasm.merge(a, b)) };
  }

  private merges = 0;

  /** After commits: the round the "gossip" timer kind marked due (core.ts), once at a time. */
  flush(): Promise<void> {
    const core = this.host.core();
    if (!core?.gossipClock.due) return Promise.resolve();
    core.gossipClock.due = false;
    this.running ??= this.round()
      .then(() => undefined)
      .finally(() => (this.running = null));
    return this.running;
  }

  /** One round now (also the test hook's way to step rounds). Answers the peers it exchanged with. */
  async round(): Promise<number[]> {
    const core = this.host.core();
    if (!core) return [];
    const list = core.peers.current();
    const ids = list.shards.filter((s) => s.state !== "retired").map((s) => s.id);
    const active = list.shards.filter((s) => s.state === "active").length;
    const { gossip } = core.config();
    const peers = peersOf(topologyFor(gossip.topology, active), ids, core.shard, gossip.fanout, () => this.host.random01()).filter((p) => !this.blocked.has(p));
    const done: number[] = [];
    let bytes = 0;
    for (const peer of peers) {
      const full = this.state();
      if (!full) break;
      const digest = await digestOf(decodeAs(full, SemanticState));
      bytes += digestBytes(digest);
      let reply: Awaited<ReturnType<GossipPeer["gossipExchange"]>>;
      try {
        reply = await this.host.peer(peer).gossipExchange(core.shard, digest);
      } catch (err) {
        console.warn(`pool ${core.pool} shard ${core.shard}: gossip with shard ${peer} failed`, err);
        continue;
      }
      if (!reply) continue;
      if (reply.delta) {
        bytes += reply.delta.length;
        this.absorb(reply.delta);
      }
      if (reply.want.length > 0) {
        const after = this.state();
        if (after) {
          const back = encode(sectionsOf(decodeAs(after, SemanticState), reply.want));
          bytes += back.length;
          await this.host.peer(peer).gossipPush(core.shard, back).catch(() => false);
        }
      }
      done.push(peer);
    }
    this.record(1, bytes);
    return done;
  }

  /** A peer's digest: what it lacks of this shard's state, and what this shard lacks of its. */
  async exchange(from: number, theirs: Digest): Promise<{ delta: Uint8Array | null; want: Section[] } | null> {
    if (this.blocked.has(from)) return null;
    const full = this.state();
    if (!full) return null;
    const state = decodeAs(full, SemanticState);
    return answer(state, await digestOf(state), theirs);
  }

  push(from: number, delta: Uint8Array): boolean {
    if (this.blocked.has(from)) return false;
    this.absorb(delta);
    return true;
  }

  /** The shard's shared state in brief (one never written to holds the empty state). */
  async summary(shard: number): Promise<SharedStateSummary> {
    const full = this.state() ?? encode(new SemanticState());
    const state = decodeAs(full, SemanticState);
    const vclock: Record<string, number> = {};
    for (const s of SECTIONS) {
      for (const [replica, n] of Object.entries(vclockOf(state, s))) {
        const shard = String(Number(replica) - 1);
        vclock[shard] = (vclock[shard] ?? 0) + n;
      }
    }
    const sizes = Object.fromEntries(SECTIONS.map((s) => [s, sizeOf(state, s)])) as Record<Section, number>;
    const counters = this.host.apply((c) => c.gossip.counters());
    const c = counters.ok ? counters.value : { rounds: 0, bytes: 0, merges: 0 };
    return { shard, vclock, sizes, digest: await sha256(full), ...c };
  }

  private state(): Uint8Array | null {
    const out = this.host.apply((core) => core.gossip.state(this.wasm));
    this.flushMerges();
    return out.ok ? out.value : null;
  }

  private absorb(delta: Uint8Array): void {
    this.host.apply((core) => core.gossip.absorb(this.wasm, delta));
    this.flushMerges();
  }

  private record(rounds: number, bytes: number): void {
    if (rounds === 0 && bytes === 0) return;
    this.host.apply((core) => {
      core.gossip.count("rounds", rounds);
      core.gossip.count("bytes", bytes);
    });
  }

  private flushMerges(): void {
    if (this.merges === 0) return;
    const n = this.merges;
    this.merges = 0;
    this.host.apply((core) => core.gossip.count("merges", n));
  }
}
