/**
 * How the gateway calls shards: every call is timed (the router's round-trip estimate) and its failures counted
 * (the router avoids a failing shard); a call for a task follows the task where a drain moved it.
 */
import { ApiError, type Outcome } from "../../contract/errors.ts";
import type { ShardLoad, ShardRecord } from "../../contract/records.ts";
import { router } from "./routing.ts";
import type { Coordinator, Placement } from "./placement.ts";

/** Hops a call for one task may follow (a task moves once per drain). */
const MAX_HOPS = 4;

/**
 * Test hooks, only with the variable DAA_TEST_HOOKS = "1" (tests and benchmarks; never set in production):
 * - a request header `x-daa-test-shard-delay: 1=20,2=50` delays every call of that request to shard 1 by 20 ms and
 *   to shard 2 by 50 ms, inside the timed round trip, as if those shards were farther away;
 * - `x-daa-test-route: random` places the request's new tasks on active shards at random (the baseline the
 *   routing benchmark compares with).
 */
export const TEST_DELAY_HEADER = "x-daa-test-shard-delay";
export const TEST_ROUTE_HEADER = "x-daa-test-route";

export interface TestHooks {
  delays: Map<number, number> | null;
  randomRoute: boolean;
}

export function testHooks(env: { DAA_TEST_HOOKS?: string }, request: Request | undefined): TestHooks | null {
  if (env.DAA_TEST_HOOKS !== "1" || !request) return null;
  return { delays: testDelays(env, request), randomRoute: request.headers.get(TEST_ROUTE_HEADER) === "random" };
}

export function testDelays(env: { DAA_TEST_HOOKS?: string }, request: Request | undefined): Map<number, number> | null {
  if (env.DAA_TEST_HOOKS !== "1" || !request) return null;
  const header = request.headers.get(TEST_DELAY_HEADER);
  if (!header) return null;
  const delays = new Map<number, number>();
  for (const part of header.split(",")) {
    const m = /^\s*(\d{1,4})=(\d{1,5})\s*$/.exec(part);
    if (m) delays.set(Number(m[1]), Number(m[2]));
  }
  return delays;
}

export class Calls {
  readonly placement: Placement;
  private readonly delays: Map<number, number> | null;
  /** Test hook: new tasks go to a random active shard. */
  readonly randomRoute: boolean;

  constructor(placement: Placement, hooks: TestHooks | null = null) {
    this.placement = placement;
    this.delays = hooks?.delays ?? null;
    this.randomRoute = hooks?.randomRoute ?? false;
  }

  /** Calls one shard, timing the round trip for the router. */
  async on<T>(pool: string, shard: number, call: (c: Coordinator) => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const delay = this.delays?.get(shard);
      if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
      const out = await call(this.placement.coordinator(pool, shard));
      const load = (out as { load?: ShardLoad } | null)?.load;
      router.observe(pool, shard, performance.now() - started, load, Date.now());
      return out;
    } catch (err) {
      router.failed(pool, shard, Date.now());
      throw err;
    }
  }

  /** A call about one task, at the shard its id names, following it where a drain moved it. */
  async forTask<T>(id: string, call: (c: Coordinator) => Promise<Outcome<T>>): Promise<Outcome<T>> {
    let { pool, shard } = this.placement.ownerOf(id);
    for (let hop = 0; ; hop++) {
      const out = await this.on(pool, shard, call);
      const moved = movedTo(out);
      if (moved === null || hop >= MAX_HOPS) return out;
      shard = moved;
    }
  }

  /** The same call on every shard that answers for the pool (active and draining), in shard order. */
  async everyShard<T>(pool: string, call: (c: Coordinator, shard: ShardRecord) => Promise<T>): Promise<{ shard: ShardRecord; out: T }[]> {
    const shards = await this.placement.serving(pool);
    return Promise.all(shards.map(async (shard) => ({ shard, out: await this.on(pool, shard.id, (c) => call(c, shard)) })));
  }
}

/** The shard a refusal says the task moved to, or null. */
export function movedTo(out: Outcome<unknown>): number | null {
  if (out.ok) return null;
  const details = out.error.details;
  return details && !Array.isArray(details) && typeof details.movedTo === "number" ? details.movedTo : null;
}

/** Whether a refusal says the shard drains and takes no new tasks. */
export function draining(out: Outcome<unknown>): boolean {
  const details = out.ok ? undefined : out.error.details;
  return !!details && !Array.isArray(details) && details.draining === true;
}

/** Whether a refusal is the tenant's quota on that shard. */
export function overQuota(out: Outcome<unknown>): boolean {
  const details = out.ok ? undefined : out.error.details;
  return !!details && !Array.isArray(details) && details.scope === "quota";
}

/** The first error of several shards' outcomes, or their values. */
export function allOk<T>(outs: readonly Outcome<T>[]): T[] {
  const values: T[] = [];
  for (const out of outs) {
    if (!out.ok) throw ApiError.fromBody(out.error);
    values.push(out.value);
  }
  return values;
}
