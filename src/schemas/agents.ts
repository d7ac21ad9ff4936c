import { z } from "zod";
import { AGENT_STATES, BREAKER_STATES } from "../../contract/records.ts";
import { Load } from "../../contract/wire/shapes.ts";
import { AgentId, intIn, PoolName, ShardId, Timestamp } from "./common.ts";
import { LeasedTask } from "./tasks.ts";

export { Load } from "../../contract/wire/shapes.ts";

export const AgentState = z.enum(AGENT_STATES);

export const Resources = z
  .strictObject({
    cpu: z.number().min(0).max(1_000_000).default(0),
    memoryMb: intIn(0, 1_000_000_000).default(0),
    gpu: intIn(0, 1024).default(0),
  })
  .meta({ id: "Resources" });

export const RegisterAgent = z.strictObject({
  agentId: AgentId.optional(),
  capabilities: z.array(z.string().min(1).max(64)).max(64).default([]),
  resources: Resources.default({ cpu: 0, memoryMb: 0, gpu: 0 }),
  maxConcurrency: intIn(1, 1000).default(1),
  metadata: z.record(z.string(), z.unknown()).default({}),
});

export const PatchAgent = z.strictObject({ state: AgentState });
export const HeartbeatBody = z.strictObject({ load: Load.optional() });
export const LeaseBody = z.strictObject({ max: intIn(1, 100).default(1), waitMs: intIn(0, 30_000).default(0) });

export const Agent = z
  .object({
    agentId: z.string(),
    pool: z.string(),
    tenant: z.string().nullable().describe("null: a shared-fleet agent serving every tenant"),
    state: AgentState,
    capabilities: z.array(z.string()),
    resources: z.object({ cpu: z.number(), memoryMb: z.number(), gpu: z.number() }),
    maxConcurrency: z.number().int(),
    inFlight: z.number().int(),
    load: z.object({ currentLoad: z.number(), queueDepth: z.number(), avgLatencyMs: z.number() }),
    metadata: z.record(z.string(), z.unknown()),
    breaker: z.enum(BREAKER_STATES),
    lastHeartbeatAt: Timestamp,
    registeredAt: Timestamp,
    latencyMs: z.number().nullable().describe("the coordinator's EWMA of this agent's lease-to-completion time"),
    credits: z.number().int().describe("tasks the mesh may still push over the agent's WebSockets"),
    shard: ShardId.describe("the agent's home shard (it serves every shard of the pool)"),
  })
  .meta({ id: "Agent" });

export const AgentWithInterval = Agent.extend({ heartbeatIntervalMs: z.number().int() });
export const AgentsResponse = z.object({ agents: z.array(Agent) });
export const LeaseResponse = z.object({ tasks: z.array(LeasedTask) });

export const PoolParams = z.object({ pool: PoolName });
export const AgentParams = z.object({ pool: PoolName, agentId: AgentId });
export const ConnectQuery = z.object({
  shard: ShardId.optional().describe("the shard to connect to (default: the agent's home); an agent holds one socket per shard its hello lists"),
  token: z.string().optional().describe("the credential, for WebSocket clients that cannot set Authorization"),
});
