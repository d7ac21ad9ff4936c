import type { AgentRecord, LeasedTask, ShardRecord, StatusCounts, TaskRecord } from "../contract/records.ts";
import type { LeasedTaskJson, TaskJson } from "../contract/wire/task.ts";

/** Records of the coordinators turned into the API's JSON (contract/wire/task.ts): timestamps as ISO 8601, payloads parsed. */

// A batch of tasks shares a few instants (its submit time, its lease time): the last few conversions are kept, as
// formatting a date costs more than presenting the rest of a task.
const recentIso = new Map<number, string>();
const iso = (ms: number): string => {
  let text = recentIso.get(ms);
  if (text === undefined) {
    text = new Date(ms).toISOString();
    if (recentIso.size >= 8) recentIso.delete(recentIso.keys().next().value!);
    recentIso.set(ms, text);
  }
  return text;
};
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

export function presentTask(task: TaskRecord): TaskJson {
  return {
    id: task.id,
    type: task.type,
    pool: task.pool,
    tenant: task.tenant,
    status: task.status,
    priority: task.priority,
    payload: JSON.parse(task.payload) as unknown,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    timeoutMs: task.timeoutMs,
    idempotencyKey: task.idempotencyKey,
    dependsOn: task.dependsOn,
    requires: task.requires,
    result: task.result === null ? null : (JSON.parse(task.result) as unknown),
    error: task.error === null ? null : (JSON.parse(task.error) as { message: string }),
    agentId: task.agentId,
    createdAt: iso(task.createdAt),
    updatedAt: iso(task.updatedAt),
    runAfter: isoOrNull(task.runAfter),
    finishedAt: isoOrNull(task.finishedAt),
    leaseExpiresAt: isoOrNull(task.leaseExpiresAt),
    shard: String(task.shard),
    ...(task.payloadOmitted ? { payloadOmitted: true as const } : {}),
    ...(task.resultOmitted ? { resultOmitted: true as const } : {}),
  };
}

export function presentLeased(task: LeasedTask): LeasedTaskJson {
  return { ...presentTask(task), attempt: task.attempt, leaseToken: task.leaseToken, leaseExpiresAt: iso(task.leaseExpiresAt) };
}

export function presentAgent(agent: AgentRecord) {
  return {
    agentId: agent.agentId,
    pool: agent.pool,
    tenant: agent.tenant,
    state: agent.state,
    capabilities: agent.capabilities,
    resources: agent.resources,
    maxConcurrency: agent.maxConcurrency,
    inFlight: agent.inFlight,
    load: agent.load,
    metadata: JSON.parse(agent.metadata) as Record<string, unknown>,
    breaker: agent.breaker,
    lastHeartbeatAt: iso(agent.lastHeartbeatAt),
    registeredAt: iso(agent.registeredAt),
    latencyMs: agent.latencyMs,
    credits: agent.credits,
    shard: String(agent.shard),
  };
}

/** A shard as the API shows it (`GET /v1/pools/:pool/shards`). */
export function presentShard(view: { shard: ShardRecord; queue: StatusCounts; agents: number }) {
  return { id: String(view.shard.id), region: view.shard.region, state: view.shard.state, createdAt: iso(view.shard.createdAt), queue: view.queue, agents: view.agents };
}
