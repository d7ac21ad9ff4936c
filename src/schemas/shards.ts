import { z } from "zod";
import { GOSSIP_TOPOLOGIES, REGIONS, SHARD_STATES } from "../../contract/records.ts";
import { PoolName, ShardId, Timestamp } from "./common.ts";
import { QueueCounts } from "./pools.ts";

export const Region = z.enum(REGIONS).describe("a Durable Object location hint (ignored by local wrangler dev)");

export const Shard = z
  .object({
    id: ShardId,
    region: Region.nullable(),
    state: z.enum(SHARD_STATES).describe("active: takes new tasks; draining: hands its queued tasks over; retired: holds nothing unfinished"),
    createdAt: Timestamp,
    queue: QueueCounts.describe("the shard's tasks by status"),
    agents: z.number().int().describe("agents at home on the shard"),
  })
  .meta({ id: "Shard" });

export const ShardsResponse = z.object({
  shards: z.array(Shard),
  topology: z.enum(GOSSIP_TOPOLOGIES.filter((t) => t !== "auto") as ["star", "ring", "mesh"]).describe("the gossip topology in use"),
});

export const AddShard = z.strictObject({ region: Region.optional() });
export const ShardParams = z.object({ pool: PoolName, id: ShardId });

const Sizes = z.object({
  image_embeddings: z.number().int(),
  content_mappings: z.number().int(),
  agent_loads: z.number().int(),
  task_queue: z.number().int(),
});

export const StateResponse = z.object({
  shards: z.array(
    z.object({
      id: ShardId,
      vclock: z.record(z.string(), z.number().int()).describe("the shard's vector clock: events seen per shard"),
      sizes: Sizes,
      digest: z.string().describe("SHA-256 (hex) of the shard's canonical encoding"),
    }),
  ),
  converged: z.boolean().describe("every active and draining shard has the same digest"),
});
