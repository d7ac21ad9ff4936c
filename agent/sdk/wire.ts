// What the mesh answers over HTTP, checked at the boundary (../shared/API.md). Objects are loose on purpose: the
// contract lets the mesh add fields, and an agent must not break when it does; only the fields the agent reads are
// required. Tasks and the WebSocket messages are the contract's own (contract/wire/).
import { z } from "zod";
import { LeasedTaskWire } from "../../contract/wire/task.ts";

export { LeasedTaskWire as LeasedTask, TaskWire as Task } from "../../contract/wire/task.ts";

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

export const LeaseAnswer = z.looseObject({ tasks: z.array(LeasedTaskWire) });
/** `GET /v1/tasks/:id/payload` (a payload left out of a push or lease answer). */
export const PayloadAnswer = z.looseObject({ id: z.string(), payload: z.unknown() });

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

