import { ApiError } from "../../contract/errors.ts";

/** Width of the platform's fixed windows for the two limiters (wrangler.toml `simple.period`). */
export const RATE_WINDOW_SECONDS = 10;

/**
 * Seconds until the current fixed window ends: the Rate Limiting binding counts in windows aligned to the wall
 * clock, so that is when a refused caller can next succeed.
 */
export function retryAfterSeconds(now: number, periodSeconds = RATE_WINDOW_SECONDS): number {
  const periodMs = periodSeconds * 1000;
  return Math.max(1, Math.ceil((periodMs - (now % periodMs)) / 1000));
}

/**
 * Refuses with 429 when either the credential or the tenant is over its limit. The credential is counted first
 * and the tenant only for a request its credential may make: a credential over its own limit that keeps calling
 * must not use up the allowance of its tenant's other credentials.
 */
export async function enforceRateLimits(env: Env, keys: { tenant: string | null; credential: string }, now = Date.now()): Promise<void> {
  const credential = await env.CREDENTIAL_RATE_LIMIT.limit({ key: keys.credential });
  const tenant = !credential.success || keys.tenant === null ? { success: true } : await env.TENANT_RATE_LIMIT.limit({ key: `tenant:${keys.tenant}` });
  if (tenant.success && credential.success) return;
  const scope = credential.success ? "tenant" : "credential";
  const retryAfter = retryAfterSeconds(now);
  throw new ApiError("rate_limited", `too many requests for this ${scope}; retry after ${retryAfter} s`, {
    scope,
    retryAfterSeconds: retryAfter,
  });
}

/** Refuses with 429 (`details.scope = "address"`) when a client address calls the public routes too often. */
export async function enforceAddressLimit(env: Env, ip: string | null, now = Date.now()): Promise<void> {
  if ((await env.PUBLIC_RATE_LIMIT.limit({ key: `ip:${ip ?? "unknown"}` })).success) return;
  const retryAfter = retryAfterSeconds(now);
  throw new ApiError("rate_limited", `too many requests from this address; retry after ${retryAfter} s`, { scope: "address", retryAfterSeconds: retryAfter });
}
