/**
 * Agents across shards. An agent is a member of every active shard of its pool, so every shard can push it work
 * and fence its leases; one of them is its home (API.md: agent field `shard`), where it is counted. Registration
 * picks the home (the shard in the agent's `metadata.region`, else a shard of the same continent, else the one with
 * the most queued work per agent) and then joins the others; reads merge the shards' records (merge.ts); changes
 * go to every shard that has the agent. An HTTP lease asks the home shard first, then the others deepest first,
 * and long-polls the home in short slices between sweeps, so work queued on another shard waits at most a slice.
 */
import { ApiError, unwrap, type Outcome } from "../../contract/errors.ts";
import { REGIONS, type AgentInput, type AgentLoad, type AgentRecord, type AgentState, type AgentWithInterval, type LeasedTask, type Principal, type Region, type ShardRecord } from "../../contract/records.ts";
import { ANSWER_BLOB_BUDGET_BYTES } from "../../lib/security/blob-refs.ts";
import { openTasks } from "../../lib/security/sealing.ts";
import type { OptionalSecrets } from "../env.ts";
import type { Calls } from "./calls.ts";
import type { Coordinator } from "./placement.ts";
import { mergeAgent, mergeAgentLists } from "./merge.ts";
import { router } from "./routing.ts";

/** The longest a lease long-polls one shard before it looks at the pool's other shards again. */
export const LEASE_SLICE_MS = 1_000;

/** Location hints of one continent: the nearest shards when none is in the agent's own region. */
const CONTINENTS: readonly (readonly Region[])[] = [["wnam", "enam"], ["sam"], ["weur", "eeur"], ["apac", "oc"], ["afr"], ["me"]];

/** The region an agent declares in its metadata, if it is one of the location hints. */
export function regionOfMetadata(metadata: string): Region | null {
  try {
    const region = (JSON.parse(metadata) as { region?: unknown }).region;
    return typeof region === "string" && (REGIONS as readonly string[]).includes(region) ? (region as Region) : null;
  } catch {
    return null;
  }
}

export class Agents {
  private readonly env: Env & OptionalSecrets;
  private readonly calls: Calls;

  constructor(env: Env & OptionalSecrets, calls: Calls) {
    this.env = env;
    this.calls = calls;
  }

  /** The home for a new agent among the active shards (see the header). */
  async chooseHome(pool: string, active: readonly ShardRecord[], metadata: string): Promise<number> {
    if (active.length === 1) return active[0]!.id;
    const region = regionOfMetadata(metadata);
    if (region !== null) {
      const same = active.find((s) => s.region === region);
      if (same) return same.id;
      const continent = CONTINENTS.find((c) => c.includes(region))!;
      const near = active.find((s) => s.region !== null && continent.includes(s.region));
      if (near) return near.id;
    }
    const loads = await Promise.all(active.map(async (s) => ({ id: s.id, load: await this.calls.on(pool, s.id, (c) => c.loadSummary()) })));
    let best = loads[0]!;
    const perAgent = (l: (typeof loads)[number]) => (l.load ? l.load.queued / (l.load.agents + 1) : 0);
    for (const l of loads) if (perAgent(l) > perAgent(best)) best = l;
    return best.id;
  }

  /** Registers at the home shard, then as a member of every other active shard. */
  async register(caller: Principal, pool: string, input: AgentInput): Promise<AgentWithInterval> {
    const active = await this.calls.placement.active(pool);
    const home = await this.chooseHome(pool, active, input.metadata);
    const registered = unwrap(await this.calls.on(pool, home, (c) => c.registerAgent(caller, { ...input, home: true })));
    this.calls.placement.rememberHome(pool, registered.agentId, home);
    const others = active.filter((s) => s.id !== home);
    const joined = await Promise.all(others.map((s) => this.calls.on(pool, s.id, (c) => c.registerAgent(caller, { ...input, agentId: registered.agentId, home: false }))));
    for (const j of joined) unwrap(j);
    return { ...registered, shard: home, home: true };
  }

  /** The agent's records on every shard that has it; not_found when none has it. */
  private async records(caller: Principal, pool: string, agentId: string): Promise<AgentRecord[]> {
    const outs = await this.calls.everyShard(pool, (c) => c.getAgent(caller, agentId));
    const found = outs.flatMap(({ out }) => (out.ok ? [out.value] : []));
    if (found.length === 0) unwrap(outs[0]!.out);
    const home = found.find((r) => r.home);
    if (home) this.calls.placement.rememberHome(pool, agentId, home.shard);
    return found;
  }

  async get(caller: Principal, pool: string, agentId: string): Promise<AgentRecord> {
    return mergeAgent(await this.records(caller, pool, agentId));
  }

  async list(caller: Principal, pool: string): Promise<AgentRecord[]> {
    const outs = await this.calls.everyShard(pool, (c) => c.listAgents(caller));
    const lists: AgentRecord[][] = [];
    for (const { shard, out } of outs) {
      if (out.ok) lists.push(out.value);
      else if (shard.id === outs[0]!.shard.id) unwrap(out);
    }
    return mergeAgentLists(lists);
  }

  /** The agent's home shard: remembered by this isolate, else found by asking the shards. */
  async home(caller: Principal, pool: string, agentId: string): Promise<number> {
    const serving = await this.calls.placement.serving(pool);
    if (serving.length === 1) return serving[0]!.id;
    const known = this.calls.placement.homeOf(pool, agentId);
    if (known !== undefined && serving.some((s) => s.id === known)) return known;
    return mergeAgent(await this.records(caller, pool, agentId)).shard;
  }

  /** A change applied on every shard that has the agent: the home first (its refusal is the answer), then the others. */
  private async everywhere<T>(caller: Principal, pool: string, agentId: string, change: (c: Coordinator) => Promise<Outcome<T>>): Promise<T[]> {
    const home = await this.home(caller, pool, agentId);
    const first = unwrap(await this.calls.on(pool, home, change));
    const others = (await this.calls.placement.serving(pool)).filter((s) => s.id !== home);
    const rest = await Promise.all(others.map((s) => this.calls.on(pool, s.id, change)));
    return [first, ...rest.flatMap((o) => (o.ok ? [o.value] : []))];
  }

  /** The agent as the change left it on its shards (a terminating agent that was idle is gone right after). */
  async transition(caller: Principal, pool: string, agentId: string, to: AgentState): Promise<AgentRecord> {
    return mergeAgent(await this.everywhere(caller, pool, agentId, (c) => c.transitionAgent(caller, agentId, to)));
  }

  async remove(caller: Principal, pool: string, agentId: string): Promise<void> {
    const outs = await this.calls.everyShard(pool, (c) => c.deleteAgent(caller, agentId));
    if (!outs.some(({ out }) => out.ok)) unwrap(outs[0]!.out);
  }

  /**
   * A heartbeat reaches every shard (each one fences the leases it gave). A shard that does not know the agent
   * (added after it registered, and the copy missed it) is joined to it here.
   */
  async heartbeat(caller: Principal, pool: string, agentId: string, load: AgentLoad | null): Promise<AgentWithInterval> {
    const serving = await this.calls.placement.serving(pool);
    const outs = await Promise.all(serving.map(async (s) => ({ shard: s, out: await this.calls.on(pool, s.id, (c) => c.heartbeat(caller, agentId, load)) })));
    const found = outs.flatMap(({ out }) => (out.ok ? [out.value] : []));
    if (found.length === 0) unwrap(outs[0]!.out);
    const missing = outs.filter(({ shard, out }) => !out.ok && out.error.code === "not_found" && shard.state === "active");
    if (missing.length > 0) {
      const known = mergeAgent(found);
      const input: AgentInput = { agentId, capabilities: known.capabilities, resources: known.resources, maxConcurrency: known.maxConcurrency, metadata: known.metadata, home: false };
      await Promise.all(missing.map(({ shard }) => this.calls.on(pool, shard.id, (c) => c.registerAgent(caller, input))));
    }
    const merged = mergeAgent(found);
    return { ...merged, heartbeatIntervalMs: found.find((r) => r.home)?.heartbeatIntervalMs ?? found[0]!.heartbeatIntervalMs };
  }

  /** Leases over the pool's shards (see the header), payloads in clear. */
  async lease(caller: Principal, pool: string, agentId: string, max: number, waitMs: number): Promise<LeasedTask[]> {
    const serving = await this.calls.placement.serving(pool);
    // Payloads kept in R2 come inline up to a budget per answer; past it they are left out, marked, for the agent to
    // fetch (GET /v1/tasks/:id/payload): the first always comes.
    if (serving.length === 1) return openTasks(this.env, unwrap(await this.calls.on(pool, serving[0]!.id, (c) => c.lease(caller, agentId, max, waitMs))), undefined, ANSWER_BLOB_BUDGET_BYTES);
    const home = await this.home(caller, pool, agentId);
    const deadline = Date.now() + waitMs;
    const order = (): number[] => {
      const others = serving.filter((s) => s.id !== home).map((s) => ({ id: s.id, queued: router.snapshot(pool, s.id).load?.queued ?? 0 }));
      others.sort((a, b) => b.queued - a.queued);
      return [home, ...others.map((o) => o.id)];
    };
    const got: LeasedTask[] = [];
    let known = false;
    for (;;) {
      for (const shard of order()) {
        if (got.length >= max) break;
        const out = await this.calls.on(pool, shard, (c) => c.lease(caller, agentId, max - got.length, 0));
        if (out.ok) {
          known = true;
          got.push(...out.value);
        } else if (out.error.code !== "not_found" || shard === home) throw ApiError.fromBody(out.error);
      }
      const left = deadline - Date.now();
      if (got.length > 0 || left <= 0 || !known) break;
      const slice = await this.calls.on(pool, home, (c) => c.lease(caller, agentId, max, Math.min(left, LEASE_SLICE_MS)));
      got.push(...unwrap(slice));
      if (got.length > 0) break;
    }
    return openTasks(this.env, got, undefined, ANSWER_BLOB_BUDGET_BYTES);
  }

  /** The shard an agent's socket connects to: the one asked for (it must serve agents), else the agent's home. */
  async socketShard(caller: Principal, pool: string, agentId: string, asked: number | null): Promise<number> {
    if (asked === null) return this.home(caller, pool, agentId);
    const serving = await this.calls.placement.serving(pool);
    if (!serving.some((s) => s.id === asked)) throw new ApiError("not_found", `pool ${pool} has no shard ${asked} serving agents`);
    return asked;
  }
}
