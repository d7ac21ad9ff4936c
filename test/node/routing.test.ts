import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ShardRecord } from "../../contract/records.ts";
import { regionOf, Router, RTT_STALE_MS, SHARD_BREAKER } from "../../src/mesh/routing.ts";

/**
 * The Worker's router on its own, with measured round trips and load summaries fed in: the shard with the lowest
 * expected time to start wins; region breaks ties, then rotation; a failing shard is avoided for the breaker's
 * cooldown; a stale estimate is probed again, so traffic comes back to a shard that recovered.
 */

const shard = (id: number, region: ShardRecord["region"] = null): ShardRecord => ({ id, region, state: "active", createdAt: 0 });
const load = (id: number, queued: number, drainPerSec: number, at: number, freeSlots = 0) => ({ shard: id, queued, drainPerSec, freeSlots, agents: 1, at });

/** Routes `n` tasks at time `now`, each answered after the shard's round trip (`rtt[id]`), with the shard's load. */
function route(r: Router, shards: ShardRecord[], rtt: Record<number, number>, n: number, now: number, queued: Record<number, number> = {}, drain = 0): number[] {
  const picks: number[] = [];
  for (let i = 0; i < n; i++) {
    const { shard: id } = r.choose("p", shards, null, now);
    r.sent("p", id);
    queued[id] = (queued[id] ?? 0) + 1;
    r.observe("p", id, rtt[id]!, load(id, queued[id]!, drain, now + i + 1), now);
    picks.push(id);
  }
  return picks;
}

describe("the router", () => {
  it("sends a lone shard everything, and breaks exact ties by region, then in turns", () => {
    const r = new Router();
    expect(r.choose("p", [shard(0)], null, 0)).toEqual({ shard: 0, reason: "only" });
    const shards = [shard(0, "weur"), shard(1, "enam"), shard(2, "enam")];
    expect(r.choose("p", shards, "weur", 0)).toEqual({ shard: 0, reason: "region" });
    const turns = [r.choose("p", shards, "enam", 0), r.choose("p", shards, "enam", 0)].map((c) => c.shard).sort();
    expect(turns).toEqual([1, 2]);
    expect(new Set([0, 1, 2].map(() => r.choose("p", shards, null, 0).reason))).toEqual(new Set(["rotation"]));
  });

  it("prefers the shard with the lowest round trip while its queue drains, with 0 / 20 / 50 ms", () => {
    const r = new Router();
    const shards = [shard(0), shard(1), shard(2)];
    const rtt: Record<number, number> = { 0: 1, 1: 21, 2: 51 };
    // 400 tasks/s arrive; agents drain up to 500 tasks/s from each shard, so a queue stays short and latency decides.
    const queued = [0, 0, 0];
    const picks: number[] = [];
    for (let now = 0; now < 5_000; now += 2.5) {
      for (let id = 0; id < 3; id++) queued[id] = Math.max(0, queued[id]! - 500 * 0.0025);
      const { shard: id } = r.choose("p", shards, null, now);
      r.sent("p", id);
      queued[id]! += 1;
      r.observe("p", id, rtt[id]!, load(id, Math.round(queued[id]!), 500, now), now);
      picks.push(id);
    }
    const best = picks.filter((p) => p === 0).length / picks.length;
    expect(best).toBeGreaterThanOrEqual(0.8);
  });

  it("never sends everything to one shard when it saturates: its queue wait moves traffic on", () => {
    const r = new Router();
    const shards = [shard(0), shard(1), shard(2)];
    const rtt = { 0: 1, 1: 21, 2: 51 };
    for (const s of shards) r.observe("p", s.id, rtt[s.id as 0 | 1 | 2], load(s.id, 0, 0, 0), 0);
    // No drain measured: 1 ms per queued task, so after ~20 tasks shard 0's wait equals shard 1's round trip.
    const picks = route(r, shards, rtt, 300, 100);
    const counts = [0, 1, 2].map((id) => picks.filter((p) => p === id).length);
    expect(counts[0]).toBeLessThan(300);
    expect(counts[1]).toBeGreaterThan(0);
    expect(counts[2]).toBeGreaterThan(0);
    // The expected start of every shard ends up within a round trip of the others (they fill in proportion).
    expect(counts[0]!).toBeGreaterThan(counts[1]!);
    expect(counts[1]!).toBeGreaterThan(counts[2]!);
  });

  it("moves traffic away from a shard that becomes slow, and back once it recovers", () => {
    const r = new Router();
    const shards = [shard(0), shard(1)];
    let now = 0;
    for (const s of shards) r.observe("p", s.id, 5, load(s.id, 0, 1000, now), now);
    const phase = (rtt: Record<number, number>, ms: number) => {
      const picks: number[] = [];
      for (const end = now + ms; now < end; now += 10) {
        const { shard: id } = r.choose("p", shards, null, now);
        r.sent("p", id);
        r.observe("p", id, rtt[id]!, load(id, 0, 1000, now), now);
        picks.push(id);
      }
      return picks;
    };
    phase({ 0: 5, 1: 5 }, 1_000);
    const slow = phase({ 0: 80, 1: 5 }, 5_000);
    expect(slow.filter((p) => p === 0).length / slow.length).toBeLessThan(0.1);
    // Shard 0 is probed once its estimate is stale, and wins its share back.
    const recovered = phase({ 0: 5, 1: 5 }, 3 * RTT_STALE_MS);
    const lastSecond = recovered.slice(-100);
    expect(lastSecond.filter((p) => p === 0).length).toBeGreaterThan(20);
  });

  it("avoids a shard whose calls fail for the breaker's cooldown, then tries it again", () => {
    const r = new Router();
    const shards = [shard(0), shard(1)];
    r.observe("p", 0, 1, load(0, 0, 100, 0), 0);
    r.observe("p", 1, 30, load(1, 0, 100, 0), 0);
    for (let i = 0; i < SHARD_BREAKER.failureThreshold; i++) r.failed("p", 0, 10);
    expect(r.choose("p", shards, null, 20)).toEqual({ shard: 1, reason: "avoiding" });
    expect(r.choose("p", shards, null, 10 + SHARD_BREAKER.cooldownMs + 1).shard).toBe(0);
  });

  it("counts queued tasks that agents have room for as starting at once", () => {
    const r = new Router();
    r.observe("p", 0, 1, load(0, 40, 10, 0, 50), 0);
    r.observe("p", 1, 5, load(1, 40, 10, 0, 0), 0);
    expect(r.expectedStartMs("p", 0, 0)).toBe(1);
    expect(r.expectedStartMs("p", 1, 0)).toBe(5 + 4_000);
    expect(r.choose("p", [shard(0), shard(1)], null, 0).shard).toBe(0);
  });

  it("always answers an active shard of the list (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ rtt: fc.double({ min: 0, max: 500, noNaN: true }), queued: fc.nat(10_000), drain: fc.double({ min: 0, max: 10_000, noNaN: true }), fails: fc.nat(5) }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 100_000 }),
        (specs, now) => {
          const r = new Router();
          const shards = specs.map((_, i) => shard(i));
          specs.forEach((s, i) => {
            r.observe("p", i, s.rtt, load(i, s.queued, s.drain, now), now);
            for (let k = 0; k < s.fails; k++) r.failed("p", i, now);
          });
          const choice = r.choose("p", shards, null, now);
          expect(shards.some((s) => s.id === choice.shard)).toBe(true);
        },
      ),
    );
  });

  it("reads the caller's region from request.cf", () => {
    const req = (cf: object) => Object.assign(new Request("https://x"), { cf }) as Request;
    expect(regionOf(new Request("https://x"))).toBeNull();
    expect(regionOf(req({ continent: "EU", longitude: "2.35" }))).toBe("weur");
    expect(regionOf(req({ continent: "EU", longitude: "37.6" }))).toBe("eeur");
    expect(regionOf(req({ continent: "NA", longitude: "-122.4" }))).toBe("wnam");
    expect(regionOf(req({ continent: "NA", longitude: "-74" }))).toBe("enam");
    expect(regionOf(req({ continent: "AS", country: "AE" }))).toBe("me");
    expect(regionOf(req({ continent: "AS", country: "JP" }))).toBe("apac");
  });
});
