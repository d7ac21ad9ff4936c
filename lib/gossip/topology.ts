/**
 * Which peers a shard exchanges its shared state with in one anti-entropy round (API.md, pool config `gossip`):
 * - star: every shard with a hub (the lowest active id), the hub with every shard; two rounds spread anything.
 * - ring: each shard with the next and the previous one in id order; about n/4 rounds to spread.
 * - mesh: each shard with `fanout` peers drawn at random anew each round; about log(n)/log(fanout+1) rounds.
 * `auto` picks star below 4 shards, ring up to 16, mesh above, so the topology follows as shards come and go.
 */
import type { GossipSetting, Topology } from "../../contract/records.ts";

export const STAR_BELOW = 4;
export const RING_UP_TO = 16;

export function topologyFor(setting: GossipSetting, shards: number): Topology {
  if (setting !== "auto") return setting;
  if (shards < STAR_BELOW) return "star";
  return shards <= RING_UP_TO ? "ring" : "mesh";
}

/**
 * The peers `self` exchanges with this round, among `ids` (the shards that take part, self included).
 * `random01` draws the mesh peers (a partial Fisher-Yates shuffle); star and ring do not draw.
 */
export function peersOf(topology: Topology, ids: readonly number[], self: number, fanout: number, random01: () => number): number[] {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const others = sorted.filter((id) => id !== self);
  if (others.length === 0) return [];
  switch (topology) {
    case "star": {
      const hub = sorted[0]!;
      return self === hub ? others : [hub];
    }
    case "ring": {
      const at = sorted.indexOf(self);
      if (at === -1) return [sorted[0]!];
      const next = sorted[(at + 1) % sorted.length]!;
      const prev = sorted[(at - 1 + sorted.length) % sorted.length]!;
      return next === prev ? [next] : [next, prev];
    }
    case "mesh": {
      const pick = [...others];
      const k = Math.min(fanout, pick.length);
      for (let i = 0; i < k; i++) {
        const j = i + Math.floor(random01() * (pick.length - i));
        [pick[i], pick[j]] = [pick[j]!, pick[i]!];
      }
      return pick.slice(0, k);
    }
  }
}
