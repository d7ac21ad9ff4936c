// How an agent talks to the mesh: it receives leased tasks and sends outcomes, extensions and heartbeats. Two
// implementations: WebSocket push with credits (transport-ws.ts) and HTTP long polling (transport-http.ts).
import { MeshError, type Load, type MeshClient, type SettleItem, type SettleResult } from "./api.ts";
import type { LeasedTask } from "./wire.ts";

/** What a transport needs from the agent. */
export interface TransportHost {
  /** How many more tasks the agent can take right now. */
  freeSlots(): number;
  onTask(task: LeasedTask): void;
  /** The mesh's answer to an outcome or extension sent with `send`. */
  onSettled(item: SettleItem, result: SettleResult): void;
  /** Facts the mesh told about the agent (heartbeat interval, lifecycle state). */
  onAgentInfo(info: { heartbeatIntervalMs?: number; state?: string }): void;
  /** The mesh no longer knows the agent (deleted, or removed after terminating). */
  onAgentGone(reason: string): void;
  log(line: string): void;
}

export interface Transport {
  readonly name: "websocket" | "http";
  /** Starts receiving work; rejects if the transport cannot be used at all. */
  start(): Promise<void>;
  /** Slots were freed: ask for more work. */
  wake(): void;
  /** Queues an outcome or extension; answered through `onSettled`. */
  send(item: SettleItem): void;
  heartbeat(load: Load): Promise<void>;
  /** Stops asking for work; outcomes still go out. */
  pause(): void;
  /** Sends what is queued, waits (bounded) for the answers, and lets go of connections. */
  close(): Promise<void>;
}

export interface TransportContext {
  pool: string;
  agentId: string;
  host: TransportHost;
}

/** Where outcomes go over HTTP (HttpSettler); the WebSocket transport uses it for what its socket cannot carry. */
export interface Settler {
  send(item: SettleItem): void;
  /** Sends what is queued and waits for the answers, at most `timeoutMs`. */
  drain(timeoutMs: number): Promise<void>;
}

/** The HTTP calls a transport makes. */
export type AgentApi = Pick<MeshClient, "baseUrl" | "lease" | "heartbeat">;

/**
 * A heartbeat over HTTP: its answer carries the interval to keep and the agent's state; a 404 means the mesh no
 * longer knows the agent.
 */
export async function heartbeatOverHttp(options: TransportContext & { client: AgentApi }, load: Load): Promise<void> {
  const { client, pool, agentId, host } = options;
  try {
    const info = await client.heartbeat(pool, agentId, load);
    host.onAgentInfo({ heartbeatIntervalMs: info.heartbeatIntervalMs, state: info.state });
  } catch (err) {
    if (err instanceof MeshError && err.status === 404) host.onAgentGone(`heartbeat answered 404: ${err.message}`);
    else throw err;
  }
}
