// The gossip protocol in Node, over the same exchange code and Wasm merge as the coordinators (bench/mesh-gossip.ts):
// the topologies pick valid peers, and any partition heals to one state within a bound per topology.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { prng, simulate } from "../../bench/mesh-gossip.ts";
import { holdsMore, SECTIONS } from "../../lib/gossip/exchange.ts";
import { peersOf, topologyFor } from "../../lib/gossip/topology.ts";

describe("gossip topologies", () => {
  it("auto is star below 4 shards, ring up to 16, mesh above; a named one is kept", () => {
    expect([1, 3, 4, 16, 17, 64].map((n) => topologyFor("auto", n))).toEqual(["star", "star", "ring", "ring", "mesh", "mesh"]);
    expect(topologyFor("mesh", 2)).toBe("mesh");
  });

  it("picks peers among the others: star through the hub, ring the two neighbours, mesh fanout distinct ones (fast-check)", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 9999 }), { minLength: 1, maxLength: 70 }), fc.nat(), fc.integer({ min: 1, max: 16 }), fc.integer(), (ids, pick, fanout, seed) => {
        const self = ids[pick % ids.length]!;
        const others = ids.filter((i) => i !== self);
        const sorted = [...ids].sort((a, b) => a - b);
        for (const topology of ["star", "ring", "mesh"] as const) {
          const peers = peersOf(topology, ids, self, fanout, prng(seed));
          expect(new Set(peers).size).toBe(peers.length);
          for (const p of peers) expect(others).toContain(p);
          if (others.length === 0) expect(peers).toEqual([]);
        }
        const hub = sorted[0]!;
        expect(peersOf("star", ids, self, fanout, Math.random).sort()).toEqual(self === hub ? [...others].sort() : [hub].filter((h) => h !== self));
        expect(peersOf("ring", ids, self, fanout, Math.random).length).toBe(Math.min(2, others.length));
        expect(peersOf("mesh", ids, self, fanout, prng(seed)).length).toBe(Math.min(fanout, others.length));
      }),
    );
  });

  it("a mesh draws new peers each round", () => {
    const rnd = prng(1);
    const ids = Array.from({ length: 64 }, (_, i) => i);
    const draws = new Set(Array.from({ length: 10 }, () => peersOf("mesh", ids, 0, 2, rnd).join(",")));
    expect(draws.size).toBeGreaterThan(5);
  });
});

describe("the exchange", () => {
  it("sends a section only to the side that lacks some of it", () => {
    const a = { vc: { "1": 3, "2": 1 }, hash: "x", size: 2 };
    const b = { vc: { "1": 2, "2": 1 }, hash: "y", size: 2 };
    expect(holdsMore("task_queue", a, b)).toBe(true);
    expect(holdsMore("task_queue", b, a)).toBe(false);
    expect(holdsMore("task_queue", a, { ...a })).toBe(false);
    // A G-Set has no replicas: differing hashes send it both ways.
    expect(holdsMore("image_embeddings", { vc: {}, hash: "x", size: 1 }, { vc: {}, hash: "y", size: 1 })).toBe(true);
    expect(SECTIONS).toEqual(["image_embeddings", "content_mappings", "agent_loads", "task_queue"]);
  });

  // Every replica runs one round per step, in order; the bounds the coordinators' test states are these.
  for (const [topology, shards, bound] of [["star", 4, 2], ["star", 16, 2], ["ring", 4, 2], ["ring", 16, 8], ["mesh", 16, 10], ["mesh", 64, 12]] as const) {
    it(`${topology} over ${shards} shards converges after a partition within ${bound} rounds, for several seeds`, async () => {
      for (const seed of [1, 2, 3]) {
        const r = await simulate({ topology, shards, tasks: 10, seed });
        expect(r.rounds).toBeGreaterThanOrEqual(1);
        expect(r.rounds).toBeLessThanOrEqual(bound);
        expect(r.bytes).toBeGreaterThan(0);
      }
    }, 60_000);
  }

  it("any partition of any size converges (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("star" as const, "ring" as const, "mesh" as const), fc.integer({ min: 2, max: 12 }), fc.integer({ min: 1, max: 8 }), fc.nat(1_000_000), async (topology, shards, tasks, seed) => {
        const r = await simulate({ topology, shards, tasks, seed, maxRounds: 50 });
        expect(r.rounds).toBeLessThanOrEqual(topology === "ring" ? Math.ceil(shards / 2) : topology === "star" ? 2 : 50);
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
