/**
 * Routing in the Worker: each new task goes to the active shard with the lowest expected time to start, the round
 * trip this isolate measures on its own calls to the shard (an EWMA) plus the shard's expected queue wait (the
 * queued work its agents have no free room for, over its recent drain rate; 1 ms per queued task while no rate is
 * measured), from the load summary each shard returns. Estimates within a millisecond tie: the shard in the caller's region wins, then they take turns.
 * A shard that fails or times out is avoided for a while (the agents' circuit breaker, lib/breaker.ts).
 */
import type { Region, RouteReason, ShardLoad, ShardRecord } from "../../contract/records.ts";
import { afterOutcome, type Breaker } from "../../lib/breaker.ts";


/** Consecutive failures that make a shard avoided, and for how long. */
export const SHARD_BREAKER = { failureThreshold: 3, cooldownMs: 5_000 };
/** Queue waits are compared up to an hour (a drain rate near zero says "very long", not infinity). */
const MAX_WAIT_MS = 3_600_000;
/** Estimates this close are a tie. */
const TIE_MS = 1;
/** A load summary older than this says nothing about the queue any more. */
const LOAD_STALE_MS = 30_000;
/**
 * A round trip not measured for this long is stale: the shard counts as close (so the next task probes it) and
 * its next measurement replaces the average instead of blending in, so a shard that recovered wins traffic back.
 */
export const RTT_STALE_MS = 2_000;

interface ShardStat {
  /** EWMA of the round trip, ms; null before the first call. */
  rttMs: number | null;
  /** When the round trip was last measured. */
  rttAt: number;
  load: ShardLoad | null;
  breaker: Breaker;
  /** Tasks sent since the load was measured (a batch spreads by the same rule). */
  sentSinceLoad: number;
}

const CLOSED: Breaker = { state: "closed", failures: 0, until: null };

/** The shard estimates of this isolate, by pool and shard. */
export class Router {
  private readonly stats = new Map<string, ShardStat>();
  private turn = 0;

  private stat(pool: string, shard: number): ShardStat {
    const key = `${pool}#${shard}`;
    let s = this.stats.get(key);
    if (!s) this.stats.set(key, (s = { rttMs: null, rttAt: 0, load: null, breaker: CLOSED, sentSinceLoad: 0 }));
    return s;
  }

  /** The expected time to start of one more task on the shard, ms. */
  expectedStartMs(pool: string, shard: number, now: number): number {
    const s = this.stat(pool, shard);
    const rtt = s.rttMs === null || now - s.rttAt > RTT_STALE_MS ? 0 : s.rttMs;
    const load = s.load && now - s.load.at <= LOAD_STALE_MS ? s.load : null;
    if (!load) return rtt + s.sentSinceLoad;
    // Tasks that find an agent with room start at once; the rest wait for the queue to drain.
    const waiting = Math.max(0, load.queued + s.sentSinceLoad - load.freeSlots);
    const waitMs = load.drainPerSec > 0 ? (waiting / load.drainPerSec) * 1000 : waiting;
    return rtt + Math.min(waitMs, MAX_WAIT_MS);
  }

  /** Whether the shard may be called: closed breaker, or open past its cooldown (one call tries it). */
  private available(s: ShardStat, now: number): boolean {
    return s.breaker.state !== "open" || (s.breaker.until ?? 0) <= now;
  }

  /**
   * The shard for one more task among `shards` (active ones), and why. `prefer`: the shard the request's previous
   * task went to; among tied shards it is kept, so a batch goes to one shard in one call while the estimates tie
   * (and successive requests take turns).
   */
  choose(pool: string, shards: readonly ShardRecord[], callerRegion: Region | null, now: number, prefer?: number): { shard: number; reason: RouteReason } {
    if (shards.length === 1) return { shard: shards[0]!.id, reason: "only" };
    const open = shards.filter((s) => this.available(this.stat(pool, s.id), now));
    const pool_ = open.length > 0 ? open : shards;
    const scored = pool_.map((s) => ({ s, ms: this.expectedStartMs(pool, s.id, now) })).sort((a, b) => a.ms - b.ms);
    const best = scored[0]!;
    const tied = scored.filter((x) => x === best || x.ms - best.ms < TIE_MS);
    const reasonBase: RouteReason = open.length < shards.length ? "avoiding" : "latency";
    if (tied.length === 1) return { shard: best.s.id, reason: reasonBase };
    const local = callerRegion === null ? [] : tied.filter((x) => x.s.region === callerRegion);
    if (local.length === 1) return { shard: local[0]!.s.id, reason: "region" };
    const among = local.length > 1 ? local : tied;
    const kept = among.find((x) => x.s.id === prefer);
    if (kept) return { shard: kept.s.id, reason: local.length > 1 ? "region" : "rotation" };
    const pick = among[this.turn++ % among.length]!;
    return { shard: pick.s.id, reason: "rotation" };
  }

  /** A task was sent: until the shard's next load summary, it counts as queued there. */
  sent(pool: string, shard: number, n = 1): void {
    this.stat(pool, shard).sentSinceLoad += n;
  }

  /** A call to the shard answered after `rttMs`, with its load summary when it sent one. */
  observe(pool: string, shard: number, rttMs: number, load: ShardLoad | undefined | null, now: number): void {
    const s = this.stat(pool, shard);
    s.rttMs = s.rttMs === null || now - s.rttAt > RTT_STALE_MS ? rttMs : s.rttMs + 0.2 * (rttMs - s.rttMs);
    s.rttAt = now;
    s.breaker = afterOutcome(s.breaker, true, now, SHARD_BREAKER);
    // A shard measures its load at most every 500 ms: the same measurement again says nothing of what was sent since.
    if (load && (!s.load || load.at > s.load.at)) {
      s.load = load;
      s.sentSinceLoad = 0;
    }
  }

  /** A load heard second hand (gossip), kept when newer than what this isolate has. */
  heard(pool: string, load: ShardLoad): void {
    const s = this.stat(pool, load.shard);
    if (!s.load || s.load.at < load.at) {
      s.load = load;
      s.sentSinceLoad = 0;
    }
  }

  /** A call to the shard failed or timed out. */
  failed(pool: string, shard: number, now: number): void {
    const s = this.stat(pool, shard);
    s.breaker = afterOutcome(s.breaker, false, now, SHARD_BREAKER);
  }

  snapshot(pool: string, shard: number): { rttMs: number | null; breaker: Breaker["state"]; load: ShardLoad | null } {
    const s = this.stat(pool, shard);
    return { rttMs: s.rttMs, breaker: s.breaker.state, load: s.load };
  }
}

/** The isolate's router: estimates live as long as the isolate. */
export const router = new Router();

/** The caller's region from Cloudflare's request data (null locally, where there is none). */
export function regionOf(request: Request): Region | null {
  const cf = (request as Request & { cf?: { continent?: string; longitude?: string; country?: string } }).cf;
  if (!cf?.continent) return null;
  const lon = Number(cf.longitude ?? "0");
  switch (cf.continent) {
    case "NA":
      return lon < -100 ? "wnam" : "enam";
    case "SA":
      return "sam";
    case "EU":
      return lon > 20 ? "eeur" : "weur";
    case "AF":
      return "afr";
    case "OC":
      return "oc";
    case "AS":
      return ["AE", "SA", "QA", "IL", "IR", "IQ", "KW", "OM", "BH", "JO", "LB", "YE", "SY"].includes(cf.country ?? "") ? "me" : "apac";
    default:
      return null;
  }
}
