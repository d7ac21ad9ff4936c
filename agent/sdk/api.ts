// A small typed client of the mesh's HTTP API v1, shared by the agent SDK and the `daa` command line.
import { z } from "zod";
import { errorFrom, MeshError, unreachable } from "../client/errors.ts";
import type { AgentLoad } from "../../contract/records.ts";
import { AgentInfo, AgentsAnswer, LeaseAnswer, PayloadAnswer, PoolsAnswer, SettleAnswer, Task, type LeasedTask, type PoolSummary } from "./wire.ts";

export { MeshError } from "../client/errors.ts";

/** The load an agent reports (contract/records.ts). */
export type Load = AgentLoad;

export type SettleItem =
  | { action: "complete"; id: string; leaseToken: string; result: unknown }
  | { action: "fail"; id: string; leaseToken: string; error: { message: string; [key: string]: unknown }; retryable: boolean }
  | { action: "extend"; id: string; leaseToken: string; extendMs: number };

export type SettleResult =
  | { id: string; ok: true; status: string; leaseExpiresAt: string | null }
  | { id: string; ok: false; code: string; message: string };

export interface RegisterBody {
  agentId: string;
  capabilities: readonly string[];
  resources: { cpu: number; memoryMb: number; gpu: number };
  maxConcurrency: number;
  metadata: Record<string, unknown>;
}

export interface MeshClientOptions {
  url: string;
  token: string;
  /** Ordinary requests give up after this long (default 60 s); long polls add their wait to it. */
  requestTimeoutMs?: number;
}

interface RequestOptions<T> {
  body?: unknown;
  schema: z.ZodType<T>;
  signal?: AbortSignal;
  /** How long the mesh may hold the request on purpose (long polls). */
  waitMs?: number;
}

export class MeshClient {
  readonly baseUrl: string;
  private readonly token: string;
  private readonly requestTimeoutMs: number;

  constructor({ url, token, requestTimeoutMs = 60_000 }: MeshClientOptions) {
    this.baseUrl = url.replace(/\/+$/, "");
    this.token = token;
    this.requestTimeoutMs = requestTimeoutMs;
  }

  // ---- agents -------------------------------------------------------------------------------------------------

  registerAgent(pool: string, body: RegisterBody): Promise<AgentInfo> {
    return this.json("POST", `/v1/pools/${seg(pool)}/agents`, { body, schema: AgentInfo });
  }

  heartbeat(pool: string, agentId: string, load: Load): Promise<AgentInfo> {
    return this.json("POST", `${agentPath(pool, agentId)}/heartbeat`, { body: { load }, schema: AgentInfo });
  }

  setAgentState(pool: string, agentId: string, state: string): Promise<AgentInfo> {
    return this.json("PATCH", agentPath(pool, agentId), { body: { state }, schema: AgentInfo });
  }

  async deleteAgent(pool: string, agentId: string): Promise<void> {
    await this.json("DELETE", agentPath(pool, agentId), { schema: z.unknown() });
  }

  async lease(pool: string, agentId: string, max: number, waitMs: number, signal?: AbortSignal): Promise<LeasedTask[]> {
    const answer = await this.json("POST", `${agentPath(pool, agentId)}/lease`, { body: { max, waitMs }, schema: LeaseAnswer, signal, waitMs });
    return answer.tasks;
  }

  /** `POST /v1/tasks/settle`: one answer per item, in order; a refused item does not stop the others. */
  async settle(items: readonly SettleItem[], signal?: AbortSignal): Promise<SettleResult[]> {
    const answer = await this.json("POST", "/v1/tasks/settle", { body: { items }, schema: SettleAnswer, signal });
    return answer.results.map((r): SettleResult =>
      r.error ? { id: r.id, ok: false, code: r.error.code, message: r.error.message } : { id: r.id, ok: true, status: r.status ?? "unknown", leaseExpiresAt: r.leaseExpiresAt ?? null },
    );
  }

  /** `GET /v1/tasks/:id/payload`: the payload of a task this agent holds the lease of (one left out of a push). */
  async leasedPayload(id: string, leaseToken: string, signal?: AbortSignal): Promise<unknown> {
    const answer = await this.json("GET", `/v1/tasks/${seg(id)}/payload?leaseToken=${encodeURIComponent(leaseToken)}`, { schema: PayloadAnswer, signal });
    return answer.payload;
  }

  listAgents(pool: string): Promise<AgentInfo[]> {
    return this.json("GET", `/v1/pools/${seg(pool)}/agents`, { schema: AgentsAnswer }).then((a) => a.agents);
  }

  // ---- tasks and pools ----------------------------------------------------------------------------------------

  submitTask(body: Record<string, unknown>): Promise<Task> {
    return this.json("POST", "/v1/tasks", { body, schema: Task });
  }

  getTask(id: string): Promise<Task> {
    return this.json("GET", `/v1/tasks/${seg(id)}`, { schema: Task });
  }

  /** Long poll: `final` is false when the task was still not final after `waitMs` (the mesh's 202). */
  async waitForResult(id: string, waitMs: number, signal?: AbortSignal): Promise<{ final: boolean; task: Task }> {
    const { status, body } = await this.request("GET", `/v1/tasks/${seg(id)}/result?waitMs=${waitMs}`, { schema: Task, signal, waitMs });
    return { final: status === 200, task: body };
  }

  listPools(): Promise<PoolSummary[]> {
    return this.json("GET", "/v1/pools", { schema: PoolsAnswer }).then((a) => a.pools);
  }

  // ---- plumbing -----------------------------------------------------------------------------------------------

  private async json<T>(method: string, path: string, options: RequestOptions<T>): Promise<T> {
    return (await this.request(method, path, options)).body;
  }

  private async request<T>(method: string, path: string, { body, schema, signal, waitMs = 0 }: RequestOptions<T>): Promise<{ status: number; body: T }> {
    const timeout = AbortSignal.timeout(this.requestTimeoutMs + waitMs);
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      // A caller's own abort propagates as is, so loops can tell "stopped" from "the mesh is down".
      if (signal?.aborted) throw signal.reason;
      throw unreachable(this.baseUrl, err);
    }
    const text = await res.text();
    const parsed = parseJson(text);
    if (!res.ok) throw errorFrom(res, parsed, text);
    const checked = schema.safeParse(parsed);
    if (!checked.success) {
      throw new MeshError(res.status, "bad_answer", `unexpected answer to ${method} ${path}: ${checked.error.issues[0]?.message ?? "invalid"}`);
    }
    return { status: res.status, body: checked.data };
  }
}

function seg(value: string): string {
  return encodeURIComponent(value);
}

function agentPath(pool: string, agentId: string): string {
  return `/v1/pools/${seg(pool)}/agents/${seg(agentId)}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
