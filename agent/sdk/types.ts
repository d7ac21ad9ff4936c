// The SDK's public types. Handlers see only these; everything else is an implementation detail.

/** What a handler receives with each task besides its payload. */
export interface HandlerContext {
  readonly taskId: string;
  readonly type: string;
  /** 1 for the first lease of the task, 2 for its first retry, ... */
  readonly attempt: number;
  /** Aborted when the task times out, its lease is lost, or the agent is stopped by force. */
  readonly signal: AbortSignal;
}

/**
 * Runs one task. What it resolves to becomes the task's result (JSON; `undefined` becomes `null`). A thrown error
 * fails the attempt; the task is retried unless the error has `retryable: false`.
 */
export type Handler = (payload: unknown, context: HandlerContext) => Promise<unknown>;

export type HandlerMap = Readonly<Record<string, Handler>>;

export interface Resources {
  cpu: number;
  memoryMb: number;
  gpu: number;
}

export type TransportMode = "auto" | "websocket" | "http";

export interface AgentOptions {
  /** The mesh, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** A credential that may register agents in `pool` (agent key, operator key, or the bootstrap key). */
  token: string;
  pool: string;
  /** Generated as `<hostname>-<8 hex>` when missing. */
  agentId?: string;
  capabilities?: readonly string[];
  /** What the agent offers to tasks' `requires`; missing fields are measured (cores, memory) or 0 (gpu). */
  resources?: Partial<Resources>;
  /** Tasks run at once (default 1); also the number of worker threads for a handler module. */
  maxConcurrency?: number;
  metadata?: Record<string, unknown>;
  /**
   * A module path or URL whose default export maps task types to handlers (run in worker threads, isolated from
   * the agent and from each other), or the handlers themselves (run in this thread).
   */
  handlers: string | URL | HandlerMap;
  /** `auto` (default): WebSocket, or HTTP long polling when the socket cannot be opened. */
  transport?: TransportMode;
  /** Per-task time limit; default: the task's `timeoutMs`. */
  taskTimeoutMs?: number;
  /** Heap limit of each worker thread (default 256). */
  memoryLimitMb?: number;
  /** Where progress and problems are reported, one line at a time (default: stderr). */
  log?: (line: string) => void;
}

export interface LoadSample {
  /** What heartbeats report: the larger of `cpu` and `memory`, the resource the agent is shortest of. */
  currentLoad: number;
  /** Share of the machine's CPU time this process used since the previous sample, 0-1. */
  cpu: number;
  /** Resident memory of the process over the memory available to it, 0-1. */
  memory: number;
  /** Tasks in flight. */
  queueDepth: number;
  /** Moving average of handler durations (ms). */
  avgLatencyMs: number;
}

export type AgentPhase = "created" | "starting" | "running" | "stopping" | "stopped";

export interface AgentStats {
  agentId: string;
  pool: string;
  phase: AgentPhase;
  transport: "websocket" | "http" | null;
  maxConcurrency: number;
  inFlight: number;
  /** Outcomes the mesh accepted. */
  completed: number;
  failed: number;
  /** Tasks failed by the per-task time limit (also counted in `failed` once accepted). */
  timedOut: number;
  /** Outcomes or extensions answered `lease_lost`: the task was no longer this agent's. */
  leaseLost: number;
  heartbeatIntervalMs: number;
  load: LoadSample;
}

export interface Agent {
  readonly agentId: string;
  /** Registers, loads the handlers and starts taking work; rejects if any of that fails. */
  start(): Promise<void>;
  /** Stops taking work, finishes what is in flight, then deregisters. Safe to call more than once. */
  stop(): Promise<void>;
  stats(): AgentStats;
  /** Settles when the agent has stopped, whether by `stop()` or because the mesh removed or terminated it. */
  readonly closed: Promise<void>;
}
