/**
 * The gateway: the one way from the Worker's routes to the pool coordinators. Routes validate, call the gateway,
 * and present. Behind it, a pool is one or more shards (placement.ts knows them; calls.ts times every call for the
 * router): new tasks are routed and committed shard by shard (submit.ts), calls about a task go to the shard that
 * holds it (tasks.ts), agents are members of every shard (agents.ts), pool reads add the shards up (pools.ts), and
 * shards are added and drained by shards.ts. Payloads are sealed on the way in and opened on the way out.
 */
import type { OptionalSecrets } from "../env.ts";
import { Agents } from "./agents.ts";
import { Calls, testHooks } from "./calls.ts";
import { Placement } from "./placement.ts";
import { Pools } from "./pools.ts";
import { Shards } from "./shards.ts";
import { Submitter } from "./submit.ts";
import { Tasks } from "./tasks.ts";

export type { Submission } from "./submit.ts";

export class Gateway {
  readonly placement: Placement;
  readonly calls: Calls;
  readonly submitter: Submitter;
  readonly tasks: Tasks;
  readonly agents: Agents;
  readonly pools: Pools;
  readonly shards: Shards;

  /** `request`: the client's request, for the test-only delay hook (calls.ts); absent for calls of the mesh itself. */
  constructor(env: Env & OptionalSecrets, request?: Request) {
    this.placement = new Placement(env);
    this.calls = new Calls(this.placement, testHooks(env as { DAA_TEST_HOOKS?: string }, request));
    this.submitter = new Submitter(env, this.calls);
    this.tasks = new Tasks(env, this.calls);
    this.agents = new Agents(env, this.calls);
    this.pools = new Pools(this.calls);
    this.shards = new Shards(this.calls, this.pools, this.agents);
  }
}
