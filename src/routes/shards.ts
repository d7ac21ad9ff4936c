import { presentShard } from "../../lib/present.ts";
import { Gateway } from "../mesh/gateway.ts";
import type { Routes } from "../openapi/route.ts";
import { PoolParams } from "../schemas/agents.ts";
import { ErrorSchema } from "../schemas/common.ts";
import { AddShard, Shard, ShardParams, ShardsResponse, StateResponse } from "../schemas/shards.ts";

const err = (description: string) => ({ description, schema: ErrorSchema });

export function shardRoutes(routes: Routes): void {
  routes.add(
    {
      method: "get",
      path: "/v1/pools/:pool/shards",
      summary: "A pool's shards: state, region, queue and agents of each, and the gossip topology in use",
      tag: "Shards",
      params: PoolParams,
      responses: { 200: { description: "the shards", schema: ShardsResponse }, 404: err("no such pool") },
    },
    async (c, { params }) => {
      const { shards, topology } = await new Gateway(c.env, c.req.raw).shards.list(c.var.caller, params.pool);
      return c.json({ shards: shards.map(presentShard), topology });
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/pools/:pool/shards",
      summary: "Add a shard (a coordinator) to a pool: operators and the bootstrap key only",
      tag: "Shards",
      audit: "shard.add",
      params: PoolParams,
      body: AddShard,
      responses: { 201: { description: "the new shard", schema: Shard }, 400: err("unknown region"), 404: err("no such pool") },
    },
    async (c, { params, body }) => {
      const added = await new Gateway(c.env, c.req.raw).shards.add(c.var.caller, params.pool, body.region ?? null);
      c.set("audit", { target: `${params.pool}#${added.shard.id}${body.region ? ` (${body.region})` : ""}` });
      return c.json(presentShard(added), 201);
    },
  );

  routes.add(
    {
      method: "post",
      path: "/v1/pools/:pool/shards/:id/drain",
      summary: "Drain a shard: it takes no new tasks, hands its queued ones to the active shards, and retires once it holds nothing unfinished",
      tag: "Shards",
      audit: "shard.drain",
      params: ShardParams,
      responses: { 200: { description: "the shard, now draining", schema: Shard }, 404: err("no such pool or shard"), 409: err("the last active shard, or a retired one") },
    },
    async (c, { params }) => {
      c.set("audit", { target: `${params.pool}#${params.id}` });
      return c.json(presentShard(await new Gateway(c.env, c.req.raw).shards.drain(c.var.caller, params.pool, Number(params.id))));
    },
  );

  routes.add(
    {
      method: "get",
      path: "/v1/pools/:pool/state",
      summary: "The shared state of each shard (sizes, vector clock, digest) and whether the shards agree",
      tag: "Shards",
      params: PoolParams,
      responses: { 200: { description: "the state per shard", schema: StateResponse }, 404: err("no such pool") },
    },
    async (c, { params }) => c.json(await new Gateway(c.env, c.req.raw).shards.state(c.var.caller, params.pool)),
  );
}
