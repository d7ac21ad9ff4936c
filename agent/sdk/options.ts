// createAgent's options checked and completed with their defaults, once, before anything starts.
import { randomBytes } from "node:crypto";
import { availableParallelism, hostname } from "node:os";
import { resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";
import { memoryBudgetBytes } from "./load.ts";
import type { AgentOptions, HandlerMap, Resources, TransportMode } from "./types.ts";

const POOL_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const TRANSPORTS: readonly string[] = ["auto", "websocket", "http"] satisfies TransportMode[];

export interface ResolvedOptions {
  url: string;
  token: string;
  pool: string;
  agentId: string;
  capabilities: string[];
  resources: Resources;
  /** What the memory share of the load is measured against (bytes). */
  memoryBudgetBytes: number;
  maxConcurrency: number;
  metadata: Record<string, unknown>;
  /** A module to run in worker threads, or handlers to run in this thread. */
  handlers: URL | HandlerMap;
  transport: TransportMode;
  taskTimeoutMs: number | null;
  memoryLimitMb: number;
  log: (line: string) => void;
}

/** Throws TypeError or RangeError naming the option, so that a mistake shows before anything is registered. */
export function resolveOptions(options: AgentOptions): ResolvedOptions {
  const {
    url,
    token,
    pool,
    agentId = defaultAgentId(),
    capabilities = [],
    resources = {},
    maxConcurrency = 1,
    metadata = {},
    handlers,
    transport = "auto",
    taskTimeoutMs,
    memoryLimitMb = 256,
    log = (line: string) => void process.stderr.write(`[daa-agent] ${line}\n`),
  } = options;
  if (!/^https?:\/\//.test(url)) throw new TypeError(`url must be an http(s) URL, not ${JSON.stringify(url)}`);
  if (!token) throw new TypeError("token is required (an agent key, an operator key or the bootstrap key)");
  if (!POOL_NAME.test(pool)) throw new TypeError(`pool ${JSON.stringify(pool)} is not a pool name (${POOL_NAME.source})`);
  if (!AGENT_ID.test(agentId)) throw new TypeError(`agentId ${JSON.stringify(agentId)} is not an agent id (${AGENT_ID.source})`);
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > 1000) throw new RangeError(`maxConcurrency must be an integer from 1 to 1000, not ${maxConcurrency}`);
  if (taskTimeoutMs !== undefined && !(taskTimeoutMs > 0)) throw new RangeError(`taskTimeoutMs must be positive, not ${taskTimeoutMs}`);
  if (!(memoryLimitMb >= 8)) throw new RangeError(`memoryLimitMb must be at least 8, not ${memoryLimitMb}`);
  if (!TRANSPORTS.includes(transport)) throw new TypeError(`transport must be auto, websocket or http, not ${JSON.stringify(transport)}`);
  const budget = memoryBudgetBytes(resources.memoryMb);
  return {
    url,
    token,
    pool,
    agentId,
    capabilities: [...capabilities],
    // Unstated resources are measured, so that tasks requiring cpu or memory can match this agent at all.
    resources: { cpu: resources.cpu ?? availableParallelism(), memoryMb: resources.memoryMb ?? Math.floor(budget / 2 ** 20), gpu: resources.gpu ?? 0 },
    memoryBudgetBytes: budget,
    maxConcurrency,
    metadata: { sdk: "daa-agent/0.1.0", node: process.version, host: hostname(), ...metadata },
    handlers: typeof handlers === "string" ? toModuleUrl(handlers) : handlers,
    transport,
    taskTimeoutMs: taskTimeoutMs ?? null,
    memoryLimitMb,
    log,
  };
}

/** A URL as is; anything else is a path, relative to the working directory. */
function toModuleUrl(handlers: string): URL {
  return /^[a-z][a-z0-9+.-]*:/i.test(handlers) && !/^[a-z]:[\\/]/i.test(handlers) ? new URL(handlers) : pathToFileURL(resolvePath(handlers));
}

/** `<hostname>-<8 hex>`: readable in `daa agents`, unique per process. */
function defaultAgentId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_.:-]/g, "-").replace(/^[^A-Za-z0-9]+/, "").slice(0, 100) || "agent";
  return `${host}-${randomBytes(4).toString("hex")}`;
}
