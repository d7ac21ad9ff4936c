/**
 * Shard administration (API.md, "Shards, routing and shared state"). Adding a shard: every serving shard starts
 * sending keyed submits through the pool's key index (and seeds it with the keys it holds), the directory records
 * the shard, the new coordinator copies the pool (configuration, tenants, agents as members), and every shard
 * learns the new list. Draining one: the directory marks it, every shard learns it (the draining one starts handing
 * its queued tasks over, shard/drain.ts in the coordinator), and the agents at home there get a new home.
 */
import { unwrap } from "../../contract/errors.ts";
import type { AgentCounts, Principal, Region, ShardList, ShardRecord, StatusCounts, Topology } from "../../contract/records.ts";
import { topologyFor } from "../../lib/gossip/topology.ts";
import type { Agents } from "./agents.ts";
import type { Calls } from "./calls.ts";
import { sumStatusCounts } from "./merge.ts";
import type { Pools } from "./pools.ts";

export interface ShardView {
  shard: ShardRecord;
  queue: StatusCounts;
  agents: number;
}

export class Shards {
  private readonly calls: Calls;
  private readonly pools: Pools;
  private readonly agents: Agents;

  constructor(calls: Calls, pools: Pools, agents: Agents) {
    this.calls = calls;
    this.pools = pools;
    this.agents = agents;
  }

  /** The pool's shards with their queues and agents at home, and the gossip topology in use. */
  async list(caller: Principal, pool: string): Promise<{ shards: ShardView[]; topology: Topology }> {
    const list = await this.calls.placement.list(pool, true);
    const counts = await this.pools.countsByShard(caller, pool);
    const config = await this.pools.config(caller, pool);
    const active = list.shards.filter((s) => s.state === "active").length;
    return {
      shards: list.shards.map((shard) => view(shard, counts.get(shard.id))),
      topology: topologyFor(config.gossip.topology, active),
    };
  }

  async add(caller: Principal, pool: string, region: Region | null): Promise<ShardView> {
    // The pool must exist and the caller see it: its configuration is what the new shard copies.
    await this.pools.config(caller, pool);
    const before = await this.calls.placement.serving(pool);
    const source = before.find((s) => s.state === "active") ?? before[0]!;
    // Keys first: from here on a keyed submit to an existing shard must carry the id its claim chose.
    const held = await Promise.all(before.map((s) => this.calls.on(pool, s.id, (c) => c.indexKeys())));
    const keys = held.flatMap((h) => (h.ok ? h.value : []));
    for (let i = 0; i < keys.length; i += 1_000) await this.calls.placement.keyIndex(pool).seed(keys.slice(i, i + 1_000));
    const snapshot = unwrap(await this.calls.on(pool, source.id, (c) => c.poolSnapshot()));
    const added = unwrap(await this.calls.placement.directory().addShard(pool, region, Date.now()));
    this.calls.placement.remember(added.list);
    unwrap(await this.calls.on(pool, added.shard.id, (c) => c.joinPool(snapshot)));
    await this.tellEveryShard(pool, added.list);
    return view(added.shard, undefined);
  }

  async drain(caller: Principal, pool: string, shard: number): Promise<ShardView> {
    await this.pools.config(caller, pool);
    const drained = unwrap(await this.calls.placement.directory().drainShard(pool, shard, Date.now()));
    this.calls.placement.remember(drained.list);
    await this.tellEveryShard(pool, drained.list);
    await this.rehome(pool, shard, drained.list);
    const counts = await this.pools.countsByShard(caller, pool);
    return view(drained.shard, counts.get(shard));
  }

  /**
   * Each active and draining shard's shared state (sizes, vector clock, digest) and whether they agree. A shard
   * never written to holds the empty state.
   */
  async state(caller: Principal, pool: string): Promise<{ shards: { id: string; vclock: Record<string, number>; sizes: Record<string, number>; digest: string }[]; converged: boolean }> {
    await this.pools.config(caller, pool);
    const outs = await this.calls.everyShard(pool, (c) => c.sharedState());
    const shards = outs.map(({ shard, out }) => ({ id: String(shard.id), vclock: out.vclock, sizes: out.sizes, digest: out.digest }));
    return { shards, converged: new Set(shards.map((s) => s.digest)).size <= 1 };
  }

  /**
   * Every shard learns the list (a shard keeps the newest version it was told), retired ones too: a dead task
   * redriven there is handed to an active shard of the list it holds.
   */
  private async tellEveryShard(pool: string, list: ShardList): Promise<void> {
    await Promise.all(list.shards.map((s) => this.calls.on(pool, s.id, (c) => c.setPeers(list))));
  }

  /** The agents at home on a draining shard move home to an active one (chosen as at registration). */
  private async rehome(pool: string, from: number, list: ShardList): Promise<void> {
    const active = list.shards.filter((s) => s.state === "active");
    const agents = await this.calls.on(pool, from, (c) => c.agentsAtHome());
    if (agents.length === 0) return;
    const moves = new Map<number, string[]>();
    for (const agent of agents) {
      const to = await this.agents.chooseHome(pool, active, agent.metadata);
      moves.set(to, [...(moves.get(to) ?? []), agent.agentId]);
    }
    for (const [to, ids] of moves) {
      unwrap(await this.calls.on(pool, to, (c) => c.setAgentHome(ids, true)));
      for (const id of ids) this.calls.placement.rememberHome(pool, id, to);
    }
    unwrap(await this.calls.on(pool, from, (c) => c.setAgentHome(agents.map((a) => a.agentId), false)));
  }
}

function view(shard: ShardRecord, counts: { queue: StatusCounts; agents: AgentCounts } | undefined): ShardView {
  return { shard, queue: counts?.queue ?? sumStatusCounts([]), agents: counts ? Object.values(counts.agents).reduce((a, b) => a + b, 0) : 0 };
}
