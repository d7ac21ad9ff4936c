// What the mesh sends back, checked at the boundary (../shared/API.md). Objects are loose on purpose: the contract
// lets the mesh add fields, and an agent must not break when it does; only the fields the agent reads are required.
import { z } from "zod";

export const LeasedTask = z.looseObject({
  id: z.string().min(1),
  type: z.string().min(1),
  pool: z.string(),
  payload: z.unknown(),
  attempt: z.number().int().min(1),
  timeoutMs: z.number().int().positive(),
  leaseToken: z.string().min(1),
  leaseExpiresAt: z.string(),
});
export type LeasedTask = z.infer<typeof LeasedTask>;

export const Task = z.looseObject({
  id: z.string(),
  type: z.string(),
  pool: z.string(),
  status: z.string(),
  result: z.unknown().optional(),
  error: z.unknown().optional(),
});
export type Task = z.infer<typeof Task>;

const LoadShape = z.looseObject({ currentLoad: z.number(), queueDepth: z.number(), avgLatencyMs: z.number() });

export const AgentInfo = z.looseObject({
  agentId: z.string(),
  pool: z.string(),
  state: z.string(),
  capabilities: z.array(z.string()),
  maxConcurrency: z.number(),
  inFlight: z.number(),
  load: LoadShape,
  lastHeartbeatAt: z.string(),
  heartbeatIntervalMs: z.number().int().positive().optional(),
});
export type AgentInfo = z.infer<typeof AgentInfo>;

export const LeaseAnswer = z.looseObject({ tasks: z.array(LeasedTask) });

const ErrorBody = z.looseObject({ code: z.string(), message: z.string() });

/** One settle result: `{id, status, leaseExpiresAt?}` when applied, `{id, error}` when refused. */
export const SettleItemAnswer = z.looseObject({
  id: z.string(),
  status: z.string().optional(),
  leaseExpiresAt: z.string().optional(),
  error: ErrorBody.optional(),
});
export const SettleAnswer = z.looseObject({ results: z.array(SettleItemAnswer) });

export const PoolSummary = z.looseObject({
  pool: z.string(),
  queue: z.record(z.string(), z.number()),
  agents: z.record(z.string(), z.number()),
});
export type PoolSummary = z.infer<typeof PoolSummary>;
export const PoolsAnswer = z.looseObject({ pools: z.array(PoolSummary) });
export const AgentsAnswer = z.looseObject({ agents: z.array(AgentInfo) });

/** The error shape every non-2xx answer has (`{"error": {"code", "message", "details"}}`). */
export const ErrorAnswer = z.looseObject({ error: z.looseObject({ code: z.string(), message: z.string(), details: z.unknown().optional() }) });

// ---- WebSocket: mesh to agent ----------------------------------------------------------------------------------

export const HelloMessage = z.looseObject({ type: z.literal("hello"), agentId: z.string(), heartbeatIntervalMs: z.number().int().positive() });
export const TaskMessage = z.looseObject({ type: z.literal("task"), task: LeasedTask });
export const AckMessage = z.looseObject({
  type: z.literal("ack"),
  id: z.string(),
  status: z.string(),
  leaseExpiresAt: z.string().optional(),
});
export const ErrorMessage = z.looseObject({ type: z.literal("error"), id: z.string().nullish(), error: ErrorBody });

/** The mesh's answer to a heartbeat frame: the agent's state and the interval to keep. */
export const HeartbeatMessage = z.looseObject({ type: z.literal("heartbeat"), state: z.string(), heartbeatIntervalMs: z.number().int().positive() });
export const MeshMessage = z.discriminatedUnion("type", [HelloMessage, TaskMessage, AckMessage, ErrorMessage, HeartbeatMessage]);
export type MeshMessage = z.infer<typeof MeshMessage>;

/** A batch is handled message by message, so one unknown or malformed entry does not hide the others. */
export const BatchEnvelope = z.looseObject({ type: z.literal("batch"), messages: z.array(z.unknown()) });
