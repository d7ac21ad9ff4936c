import { env, exports } from "cloudflare:workers";
import { TEST_ADMIN_KEY } from "./constants";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import type { PoolCoordinator } from "../durable-objects/pool-coordinator";

export const ADMIN_KEY = TEST_ADMIN_KEY;

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** Calls the Worker in-process, as a client would over HTTP. */
export async function api<T = any>(method: string, path: string, body?: unknown, init: { token?: string | null; headers?: Record<string, string> } = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...init.headers };
  const token = init.token === undefined ? ADMIN_KEY : init.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (body !== undefined) {
    headers["content-type"] ??= "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await exports.default.fetch(new Request(`https://mesh.test${path}`, { method, headers, body: payload }));
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics, dashboard)
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

let counter = 0;
/** A pool name no other test in this file uses. */
export function freshPool(prefix = "p"): string {
  counter += 1;
  return `${prefix}-${counter}-${Math.floor(performance.now())}`;
}


export function poolStub(pool: string): DurableObjectStub<PoolCoordinator> {
  return env.POOL.getByName(pool);
}

/**
 * Time for one pool's coordinator, moved by the test: the coordinator reads `clock()`, and the alarm is run
 * by hand after moving it, so expiry and backoff are tested without waiting.
 */
export class PoolClock {
  constructor(
    readonly pool: string,
    // In the future, because the runtime moves an alarm set in the past to the present.
    public now = Math.ceil(Date.now() / 1e9) * 1e9 + 10 * 365 * 24 * 3600 * 1000,
  ) {}

  async install(): Promise<this> {
    const clock = this;
    await runInDurableObject(poolStub(this.pool), (instance: PoolCoordinator) => {
      instance.clock = () => clock.now;
    });
    return this;
  }

  /** Moves time forward and runs the pool's alarm if one is set; answers whether it ran. */
  async advance(ms: number): Promise<boolean> {
    this.now += ms;
    await this.install();
    return runDurableObjectAlarm(poolStub(this.pool));
  }
}

/** Submits one task and answers its body; fails the test on anything but 201. */
export async function submit(pool: string, fields: Record<string, unknown> = {}): Promise<any> {
  const res = await api("POST", "/v1/tasks", { type: `${pool}.work`, ...fields });
  if (res.status !== 201) throw new Error(`submit answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function register(pool: string, agentId: string, fields: Record<string, unknown> = {}): Promise<any> {
  const res = await api("POST", `/v1/pools/${pool}/agents`, { agentId, maxConcurrency: 10, ...fields });
  if (res.status !== 201) throw new Error(`register answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function lease(pool: string, agentId: string, max = 1, waitMs = 0): Promise<any[]> {
  const res = await api("POST", `/v1/pools/${pool}/agents/${agentId}/lease`, { max, waitMs });
  if (res.status !== 200) throw new Error(`lease answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.tasks;
}

export function expectError(res: ApiResponse, status: number, code: string): void {
  if (res.status !== status || res.body?.error?.code !== code) {
    throw new Error(`expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`);
  }
  if (typeof res.body.error.message !== "string" || res.body.error.message.length === 0) throw new Error("error without message");
  if (JSON.stringify(res.body).includes("    at ")) throw new Error("stack trace in an error body");
}
