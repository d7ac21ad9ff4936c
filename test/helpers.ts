import { exports } from "cloudflare:workers";
import { TEST_ADMIN_KEY } from "./constants";

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
